package endpoints_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"

	"skiff.dev/skiff/internal/controllers/endpoints"
	"skiff.dev/skiff/internal/testenv"
)

const (
	notReadyAnnotation = "fake.skiff.dev/not-ready" // the fake kubelet keeps such pods unready
	hold               = "test.skiff.dev/hold"      // a finalizer only the test removes
)

type cluster struct {
	client kubernetes.Interface
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	env := testenv.Start(t, testenv.WithoutControllers)
	testenv.StartFakeKubelet(t, env.Client, func(pod *corev1.Pod) testenv.PodOutcome {
		out := testenv.Running()
		out.Ready = pod.Annotations[notReadyAnnotation] != "true"
		return out
	})
	factory := informers.NewSharedInformerFactory(env.Client, 0)
	b := record.NewBroadcaster()
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: env.Client.CoreV1().Events("")})
	t.Cleanup(b.Shutdown)
	rec := b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "endpoints-controller"})
	c := endpoints.New(env.Client, factory, rec, testLogger(t), endpoints.Options{})
	testenv.Run(t, "endpoints controller", func(ctx context.Context) error {
		factory.Start(ctx.Done())
		defer factory.Shutdown()
		return c.Run(ctx, 2)
	})
	return &cluster{client: env.Client}
}

func (cl *cluster) namespace(t *testing.T, name string) string {
	t.Helper()
	if _, err := cl.client.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return name
}

// pod makes a pod of app with a container port named http.
func (cl *cluster) pod(t *testing.T, ns, name, app string, httpPort int32, notReady bool) *corev1.Pod {
	t.Helper()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": app}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: httpPort}}}}},
	}
	if notReady {
		p.Annotations = map[string]string{notReadyAnnotation: "true"}
	}
	out, err := cl.client.CoreV1().Pods(ns).Create(t.Context(), p, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (cl *cluster) service(t *testing.T, ns string, svc *corev1.Service) *corev1.Service {
	t.Helper()
	out, err := cl.client.CoreV1().Services(ns).Create(t.Context(), svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func webService(name string, publishNotReady bool) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"tier": "front"}},
		Spec: corev1.ServiceSpec{
			Selector:                 map[string]string{"app": "web"},
			PublishNotReadyAddresses: publishNotReady,
			Ports: []corev1.ServicePort{
				{Name: "http", Port: 80, TargetPort: intstr.FromString("http")},
				{Name: "metrics", Port: 9090, TargetPort: intstr.FromInt32(9090)},
			},
		},
	}
}

// summary renders Endpoints as "ports: ready | notready" lines, one per
// subset, addresses by pod name.
func summary(ep *corev1.Endpoints) []string {
	var out []string
	for _, s := range ep.Subsets {
		var ports []string
		for _, p := range s.Ports {
			ports = append(ports, fmt.Sprintf("%s=%d", p.Name, p.Port))
		}
		sort.Strings(ports)
		out = append(out, fmt.Sprintf("%s: %s | %s", strings.Join(ports, ","), addrNames(s.Addresses), addrNames(s.NotReadyAddresses)))
	}
	sort.Strings(out)
	return out
}

func addrNames(addrs []corev1.EndpointAddress) string {
	var n []string
	for _, a := range addrs {
		n = append(n, a.TargetRef.Name)
	}
	sort.Strings(n)
	return strings.Join(n, ",")
}

// sliceSummary renders a Service's slices (by managing controller) as
// "ports: pod(ready,serving,terminating) ..." lines, one per slice.
func (cl *cluster) sliceSummary(ctx context.Context, ns, svc, managedBy string) ([]string, []discoveryv1.EndpointSlice, error) {
	list, err := cl.client.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{
		LabelSelector: discoveryv1.LabelServiceName + "=" + svc + "," + discoveryv1.LabelManagedBy + "=" + managedBy})
	if err != nil {
		return nil, nil, err
	}
	var out []string
	for _, s := range list.Items {
		var ports []string
		for _, p := range s.Ports {
			ports = append(ports, fmt.Sprintf("%s=%d", ptr.Deref(p.Name, ""), ptr.Deref(p.Port, 0)))
		}
		sort.Strings(ports)
		var eps []string
		for _, e := range s.Endpoints {
			who := e.Addresses[0]
			if e.TargetRef != nil {
				who = e.TargetRef.Name
			}
			c := e.Conditions
			eps = append(eps, fmt.Sprintf("%s(%s%s%s)", who, flag(c.Ready, "R"), flag(c.Serving, "S"), flag(c.Terminating, "T")))
		}
		sort.Strings(eps)
		out = append(out, fmt.Sprintf("%s: %s", strings.Join(ports, ","), strings.Join(eps, " ")))
	}
	sort.Strings(out)
	return out, list.Items, nil
}

func flag(b *bool, s string) string {
	switch {
	case b == nil:
		return "-"
	case *b:
		return s
	}
	return "_"
}

func (cl *cluster) waitEndpoints(t *testing.T, ns, name string, want ...string) *corev1.Endpoints {
	t.Helper()
	sort.Strings(want)
	var got []string
	var ep *corev1.Endpoints
	eventually(t, func(ctx context.Context) (bool, error) {
		var err error
		ep, err = cl.client.CoreV1().Endpoints(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		got = summary(ep)
		return slices.Equal(got, want), nil
	}, func() string { return fmt.Sprintf("endpoints %s/%s = %q, want %q", ns, name, got, want) })
	return ep
}

func (cl *cluster) waitSlices(t *testing.T, ns, svc, managedBy string, want ...string) []discoveryv1.EndpointSlice {
	t.Helper()
	sort.Strings(want)
	var got []string
	var items []discoveryv1.EndpointSlice
	eventually(t, func(ctx context.Context) (bool, error) {
		var err error
		got, items, err = cl.sliceSummary(ctx, ns, svc, managedBy)
		return err == nil && slices.Equal(got, want), err
	}, func() string { return fmt.Sprintf("slices of %s/%s = %q, want %q", ns, svc, got, want) })
	return items
}

func (cl *cluster) patchPod(t *testing.T, ns, name string, patch map[string]any) {
	t.Helper()
	b, _ := json.Marshal(patch)
	if _, err := cl.client.CoreV1().Pods(ns).Patch(t.Context(), name, types.MergePatchType, b, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestFollowPods: Endpoints and EndpointSlices follow pods becoming
// ready, not ready and terminating, with named ports resolved per pod.
func TestFollowPods(t *testing.T) {
	cl := startCluster(t)
	ns := cl.namespace(t, "follow")
	cl.service(t, ns, webService("web", false))
	cl.pod(t, ns, "a", "web", 8080, false)
	cl.pod(t, ns, "b", "web", 8081, false) // names its http port differently
	cl.pod(t, ns, "c", "web", 8080, true)  // never ready
	cl.pod(t, ns, "other", "db", 8080, false)

	ep := cl.waitEndpoints(t, ns, "web",
		"http=8080,metrics=9090: a | c",
		"http=8081,metrics=9090: b | ")
	if ep.Labels["tier"] != "front" || ep.Labels[discoveryv1.LabelSkipMirror] != "true" {
		t.Errorf("endpoints labels %v: want the service's and skip-mirror", ep.Labels)
	}
	items := cl.waitSlices(t, ns, "web", endpoints.SliceControllerName,
		"http=8080,metrics=9090: a(RS_) c(___)",
		"http=8081,metrics=9090: b(RS_)")
	for _, s := range items {
		if s.Labels["tier"] != "front" || len(s.OwnerReferences) != 1 || s.OwnerReferences[0].Kind != "Service" ||
			!ptr.Deref(s.OwnerReferences[0].Controller, false) || s.AddressType != discoveryv1.AddressTypeIPv4 {
			t.Errorf("slice %s: labels %v owners %+v type %s", s.Name, s.Labels, s.OwnerReferences, s.AddressType)
		}
		if !strings.HasPrefix(s.Name, "web-") {
			t.Errorf("slice name %q does not start with the service's", s.Name)
		}
		for _, e := range s.Endpoints {
			if e.TargetRef == nil || e.TargetRef.Kind != "Pod" || e.TargetRef.UID == "" || e.Zone != nil {
				t.Errorf("slice %s endpoint %+v: want a pod targetRef and no zone", s.Name, e)
			}
		}
	}

	// a becomes unready, c ready.
	cl.patchPod(t, ns, "a", map[string]any{"metadata": map[string]any{"annotations": map[string]any{notReadyAnnotation: "true"}}})
	cl.patchPod(t, ns, "c", map[string]any{"metadata": map[string]any{"annotations": map[string]any{notReadyAnnotation: nil}}})
	cl.waitEndpoints(t, ns, "web",
		"http=8080,metrics=9090: c | a",
		"http=8081,metrics=9090: b | ")
	cl.waitSlices(t, ns, "web", endpoints.SliceControllerName,
		"http=8080,metrics=9090: a(___) c(RS_)",
		"http=8081,metrics=9090: b(RS_)")

	// b terminates (a finalizer holds it): gone from Endpoints, serving
	// but terminating in its slice.
	cl.patchPod(t, ns, "b", map[string]any{"metadata": map[string]any{"finalizers": []string{hold}}})
	if err := cl.client.CoreV1().Pods(ns).Delete(t.Context(), "b", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	cl.waitEndpoints(t, ns, "web", "http=8080,metrics=9090: c | a")
	cl.waitSlices(t, ns, "web", endpoints.SliceControllerName,
		"http=8080,metrics=9090: a(___) c(RS_)",
		"http=8081,metrics=9090: b(_ST)")

	// Once b is gone, so is its slice.
	cl.patchPod(t, ns, "b", map[string]any{"metadata": map[string]any{"finalizers": nil}})
	cl.waitSlices(t, ns, "web", endpoints.SliceControllerName, "http=8080,metrics=9090: a(___) c(RS_)")

	// Deleting the Service deletes both.
	if err := cl.client.CoreV1().Services(ns).Delete(t.Context(), "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, func(ctx context.Context) (bool, error) {
		_, err := cl.client.CoreV1().Endpoints(ns).Get(ctx, "web", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	}, func() string { return "endpoints not deleted with the service" })
	cl.waitSlices(t, ns, "web", endpoints.SliceControllerName)
}

// TestPublishNotReady: with publishNotReadyAddresses every pod is ready,
// terminating ones included.
func TestPublishNotReady(t *testing.T) {
	cl := startCluster(t)
	ns := cl.namespace(t, "publish")
	cl.service(t, ns, webService("web", true))
	cl.pod(t, ns, "a", "web", 8080, false)
	cl.pod(t, ns, "c", "web", 8080, true)
	cl.waitEndpoints(t, ns, "web", "http=8080,metrics=9090: a,c | ")
	cl.waitSlices(t, ns, "web", endpoints.SliceControllerName, "http=8080,metrics=9090: a(RS_) c(R__)")

	cl.patchPod(t, ns, "a", map[string]any{"metadata": map[string]any{"finalizers": []string{hold}}})
	if err := cl.client.CoreV1().Pods(ns).Delete(t.Context(), "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	cl.waitEndpoints(t, ns, "web", "http=8080,metrics=9090: a,c | ")
	cl.waitSlices(t, ns, "web", endpoints.SliceControllerName, "http=8080,metrics=9090: a(RST) c(R__)")
	cl.patchPod(t, ns, "a", map[string]any{"metadata": map[string]any{"finalizers": nil}})
}

// TestPlaceholderAndHeadless: a Service without pods keeps one empty
// slice; headless Services are labelled so, and list hostnames of pods
// that name them as subdomain.
func TestPlaceholderAndHeadless(t *testing.T) {
	cl := startCluster(t)
	ns := cl.namespace(t, "headless")
	svc := webService("db", false)
	svc.Spec.Selector = map[string]string{"app": "db"}
	svc.Spec.ClusterIP = corev1.ClusterIPNone
	cl.service(t, ns, svc)
	items := cl.waitSlices(t, ns, "db", endpoints.SliceControllerName, ": ")
	if _, ok := items[0].Labels["service.kubernetes.io/headless"]; !ok {
		t.Errorf("placeholder slice labels %v: not headless", items[0].Labels)
	}
	cl.waitEndpoints(t, ns, "db")

	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "db-0", Labels: map[string]string{"app": "db"}},
		Spec: corev1.PodSpec{Hostname: "db-0", Subdomain: "db", Containers: []corev1.Container{{Name: "c", Image: "busybox",
			Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 5432}}}}},
	}
	if _, err := cl.client.CoreV1().Pods(ns).Create(t.Context(), p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	ep := cl.waitEndpoints(t, ns, "db", "http=5432,metrics=9090: db-0 | ")
	if h := ep.Subsets[0].Addresses[0].Hostname; h != "db-0" {
		t.Errorf("endpoints hostname %q, want db-0", h)
	}
	items = cl.waitSlices(t, ns, "db", endpoints.SliceControllerName, "http=5432,metrics=9090: db-0(RS_)")
	if h := items[0].Endpoints[0].Hostname; h == nil || *h != "db-0" {
		t.Errorf("slice hostname %v, want db-0", h)
	}
}

// TestManyEndpoints: slices hold at most 100 endpoints each.
func TestManyEndpoints(t *testing.T) {
	cl := startCluster(t)
	ns := cl.namespace(t, "many")
	cl.service(t, ns, webService("web", false))
	const n = 230
	for i := range n {
		cl.pod(t, ns, fmt.Sprintf("p%03d", i), "web", 8080, false)
	}
	var sizes []int
	eventually(t, func(ctx context.Context) (bool, error) {
		_, items, err := cl.sliceSummary(ctx, ns, "web", endpoints.SliceControllerName)
		if err != nil {
			return false, err
		}
		sizes = sizes[:0]
		ready := 0
		for _, s := range items {
			sizes = append(sizes, len(s.Endpoints))
			for _, e := range s.Endpoints {
				if ptr.Deref(e.Conditions.Ready, false) {
					ready++
				}
			}
		}
		sort.Ints(sizes)
		return ready == n && slices.Equal(sizes, []int{30, 100, 100}), nil
	}, func() string { return fmt.Sprintf("slice sizes %v, want [30 100 100] all ready", sizes) })
	ep := cl.waitEndpoints(t, ns, "web", "http=8080,metrics=9090: "+podNames(n)+" | ")
	if len(ep.Subsets[0].Addresses) != n {
		t.Errorf("%d addresses, want %d", len(ep.Subsets[0].Addresses), n)
	}
}

func podNames(n int) string {
	var names []string
	for i := range n {
		names = append(names, fmt.Sprintf("p%03d", i))
	}
	return strings.Join(names, ",")
}

// TestMirroring: the Endpoints of a Service without a selector are
// mirrored into EndpointSlices, and left alone otherwise.
func TestMirroring(t *testing.T) {
	cl := startCluster(t)
	ns := cl.namespace(t, "mirror")
	cl.service(t, ns, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "legacy"},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "db", Port: 5432}}},
	})
	ep := &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: "legacy", Labels: map[string]string{"owner": "me"}, Annotations: map[string]string{"note": "hand-made"}},
		Subsets: []corev1.EndpointSubset{{
			Addresses:         []corev1.EndpointAddress{{IP: "10.1.2.3"}, {IP: "10.1.2.4", Hostname: "replica"}},
			NotReadyAddresses: []corev1.EndpointAddress{{IP: "10.1.2.5"}},
			Ports:             []corev1.EndpointPort{{Name: "db", Port: 5432}},
		}, {
			Addresses: []corev1.EndpointAddress{{IP: "fd00::1"}},
			Ports:     []corev1.EndpointPort{{Name: "db", Port: 5432}},
		}},
	}
	ep, err := cl.client.CoreV1().Endpoints(ns).Create(t.Context(), ep, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	items := cl.waitSlices(t, ns, "legacy", endpoints.MirrorControllerName,
		"db=5432: 10.1.2.3(R--) 10.1.2.4(R--) 10.1.2.5(_--)",
		"db=5432: fd00::1(R--)")
	for _, s := range items {
		if s.Labels["owner"] != "me" || s.Annotations["note"] != "hand-made" || s.OwnerReferences[0].Kind != "Endpoints" {
			t.Errorf("mirrored slice %s: labels %v annotations %v owners %+v", s.Name, s.Labels, s.Annotations, s.OwnerReferences)
		}
	}

	// The Endpoints controller leaves a selectorless Service's Endpoints
	// alone, and the mirror follows its edits.
	ep.Subsets = ep.Subsets[:1]
	ep.Subsets[0].Addresses = ep.Subsets[0].Addresses[:1]
	if _, err := cl.client.CoreV1().Endpoints(ns).Update(t.Context(), ep, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	cl.waitSlices(t, ns, "legacy", endpoints.MirrorControllerName, "db=5432: 10.1.2.3(R--) 10.1.2.5(_--)")
	time.Sleep(200 * time.Millisecond)
	got, err := cl.client.CoreV1().Endpoints(ns).Get(t.Context(), "legacy", metav1.GetOptions{})
	if err != nil || len(got.Subsets) != 1 || got.Labels[discoveryv1.LabelSkipMirror] != "" {
		t.Errorf("user endpoints changed: %+v, %v", got, err)
	}

	// Marked skip-mirror, it is no longer mirrored.
	got.Labels[discoveryv1.LabelSkipMirror] = "true"
	if _, err := cl.client.CoreV1().Endpoints(ns).Update(t.Context(), got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	cl.waitSlices(t, ns, "legacy", endpoints.MirrorControllerName)
}

// eventually polls cond until it holds, failing the test with what()
// after 30s.
func eventually(t *testing.T, cond func(ctx context.Context) (bool, error), what func() string) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(t.Context(), 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		ok, err := cond(ctx)
		last = err
		return ok, nil
	})
	if err != nil {
		t.Fatalf("%s (last error: %v)", what(), last)
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
