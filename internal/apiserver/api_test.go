package apiserver_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"skiff.dev/skiff/internal/daemon"
	"skiff.dev/skiff/internal/testenv"
)

func TestWatchAfterCompactionIsGone(t *testing.T) {
	env := testenv.Start(t, testenv.WithoutControllers, func(o *daemon.ServerOptions) { o.CompactInterval = 100 * time.Millisecond })
	ctx := context.Background()
	cms := env.Client.CoreV1().ConfigMaps("default")
	cm, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "c"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	first := cm.ResourceVersion
	page, err := cms.List(ctx, metav1.ListOptions{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	// More writes than the watch cache keeps, and time for the compactor
	// to pass the first version.
	update := func(i int) {
		cm.Data = map[string]string{"i": strings.Repeat("x", i%7+1)}
		cm.ResourceVersion = ""
		if cm, err = cms.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 1100; i++ {
		update(i)
	}
	deadline := time.Now().Add(20 * time.Second)
	for i := 0; ; i++ {
		update(i)
		// A watch from before the compaction must end with 410 Gone.
		w, err := cms.Watch(ctx, metav1.ListOptions{ResourceVersion: first})
		if err != nil {
			if apierrors.IsResourceExpired(err) || apierrors.IsGone(err) {
				break
			}
			t.Fatal(err)
		}
		gone := false
		timeout := time.After(2 * time.Second)
	events:
		for {
			select {
			case ev, ok := <-w.ResultChan():
				if !ok {
					break events
				}
				if ev.Type == watch.Error {
					st := apierrors.FromObject(ev.Object)
					if !apierrors.IsResourceExpired(st) && !apierrors.IsGone(st) {
						t.Fatalf("watch error %v, want 410 Expired", st)
					}
					gone = true
					break events
				}
			case <-timeout:
				break events
			}
		}
		w.Stop()
		if gone {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no 410 for a compacted resourceVersion after 20s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// A continue token from before the compaction is expired too, when
	// there is still something to continue to.
	if page.Continue != "" {
		_, err = cms.List(ctx, metav1.ListOptions{Limit: 1, Continue: page.Continue})
		if !apierrors.IsResourceExpired(err) {
			t.Fatalf("stale continue: %v, want 410 Expired", err)
		}
	}
}

func TestWatchListSendsInitialEventsThenBookmark(t *testing.T) {
	env := testenv.Start(t, testenv.WithoutControllers)
	ctx := context.Background()
	for _, n := range []string{"a", "b"} {
		if _, err := env.Client.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: n}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	yes := true
	w, err := env.Client.CoreV1().ConfigMaps("default").Watch(ctx, metav1.ListOptions{
		SendInitialEvents: &yes, AllowWatchBookmarks: true, ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	var got []string
	for ev := range w.ResultChan() {
		m, _ := ev.Object.(metav1.ObjectMetaAccessor)
		if ev.Type == watch.Bookmark {
			if m.GetObjectMeta().GetAnnotations()[metav1.InitialEventsAnnotationKey] != "true" {
				t.Fatalf("bookmark without the initial-events-end annotation: %+v", ev.Object)
			}
			break
		}
		got = append(got, string(ev.Type)+" "+m.GetObjectMeta().GetName())
	}
	if strings.Join(got, ",") != "ADDED a,ADDED b" {
		t.Fatalf("initial events %v, want ADDED a, ADDED b", got)
	}
}

func TestMetrics(t *testing.T) {
	env := testenv.Start(t, testenv.WithoutControllers)
	if _, err := env.Client.CoreV1().ConfigMaps("default").Get(context.Background(), "absent", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("get absent: %v", err)
	}
	client, err := rest.HTTPClientFor(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Get(env.Config.Host + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	for _, want := range []string{
		`apiserver_request_total{code="404",group="",resource="configmaps",subresource="",verb="get",version="v1"} 1`,
		`apiserver_request_duration_seconds_bucket{group="",resource="configmaps",subresource="",verb="get",version="v1",le="0.005"}`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestPagingWithSelectors(t *testing.T) {
	env := testenv.Start(t, testenv.WithoutControllers)
	ctx := context.Background()
	cms := env.Client.CoreV1().ConfigMaps("default")
	for i := 0; i < 25; i++ {
		parity := map[bool]string{true: "even", false: "odd"}[i%2 == 0]
		if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{
			Name: "p" + strings.Repeat("x", i), Labels: map[string]string{"parity": parity}}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		selector string
		limit    int64
		want     int
	}{{"", 4, 25}, {"parity=even", 3, 13}, {"parity=odd", 5, 12}, {"parity=none", 2, 0}} {
		seen := map[string]bool{}
		opts := metav1.ListOptions{LabelSelector: tc.selector, Limit: tc.limit}
		pages := 0
		for {
			l, err := cms.List(ctx, opts)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			if int64(len(l.Items)) > tc.limit {
				t.Fatalf("%q: page of %d items, limit %d", tc.selector, len(l.Items), tc.limit)
			}
			for _, cm := range l.Items {
				if seen[cm.Name] {
					t.Fatalf("%q: %s listed twice", tc.selector, cm.Name)
				}
				seen[cm.Name] = true
			}
			if l.Continue == "" {
				break
			}
			opts.Continue = l.Continue
		}
		// kube-root-ca.crt does not exist in Skiff yet; count only ours.
		if len(seen) != tc.want {
			t.Errorf("%q limit %d: %d objects in %d pages, want %d", tc.selector, tc.limit, len(seen), pages, tc.want)
		}
	}
}

// TestProtobufListMatchesJSON: protobuf lists are assembled from stored
// bytes without decoding; they must carry exactly what the decoded JSON
// list carries, resourceVersions included.
func TestProtobufListMatchesJSON(t *testing.T) {
	env := testenv.Start(t, testenv.WithoutControllers)
	ctx := context.Background()
	replicas := int32(3)
	for i, name := range []string{"a", "b", "c"} {
		d := &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"i": name}, Annotations: map[string]string{"x": "y"}, Finalizers: []string{"example.com/f"}},
			Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
					Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "img:" + name}}}}},
		}
		if _, err := env.Client.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if i == 1 { // a later revision for one of them
			d.Spec.Template.Spec.Containers[0].Image = "img:new"
			if _, err := env.Client.AppsV1().Deployments("default").Update(ctx, d, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	jsonCfg := *env.Config
	jsonCfg.ContentType, jsonCfg.AcceptContentTypes = "application/json", "application/json"
	jsonClient := kubernetes.NewForConfigOrDie(&jsonCfg)
	for _, limit := range []int64{0, 2} {
		fromProto, err := env.Client.AppsV1().Deployments("default").List(ctx, metav1.ListOptions{Limit: limit})
		if err != nil {
			t.Fatal(err)
		}
		fromJSON, err := jsonClient.AppsV1().Deployments("default").List(ctx, metav1.ListOptions{Limit: limit, ResourceVersion: fromProto.ResourceVersion, ResourceVersionMatch: metav1.ResourceVersionMatchExact})
		if err != nil {
			t.Fatal(err)
		}
		for i := range fromJSON.Items {
			fromJSON.Items[i].TypeMeta = metav1.TypeMeta{} // JSON items carry it, protobuf items do not
		}
		if !equality.Semantic.DeepEqual(fromProto.Items, fromJSON.Items) {
			t.Fatalf("limit %d: protobuf list differs from JSON list:\n%v\n%v", limit, fromProto.Items, fromJSON.Items)
		}
		if limit > 0 && (fromProto.Continue == "" || fromProto.RemainingItemCount == nil || *fromProto.RemainingItemCount != 1) {
			t.Fatalf("limit %d: continue %q remaining %v", limit, fromProto.Continue, fromProto.RemainingItemCount)
		}
		for _, d := range fromProto.Items {
			if d.ResourceVersion == "" || d.Name == "" || *d.Spec.Replicas != 3 {
				t.Fatalf("item lacks fields: %+v", d.ObjectMeta)
			}
		}
	}
}
