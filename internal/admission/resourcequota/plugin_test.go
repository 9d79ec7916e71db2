package resourcequota

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"skiff.dev/skiff/internal/admission/resourcequota/usage"
	"skiff.dev/skiff/internal/apiserver"
)

var podsGR = schema.GroupResource{Resource: "pods"}

func createPod(name string, dryRun bool) *apiserver.Attributes {
	return &apiserver.Attributes{Operation: apiserver.Create, Resource: podsGR, Namespace: "ns", Name: name,
		Object: testPod(nil, nil), DryRun: dryRun}
}

// startPlugin runs the plugin against a fake clientset holding one quota
// of pods: 2, and counts the status writes (failing the first conflicts
// many).
func startPlugin(t *testing.T, conflicts int32) (*Plugin, *fake.Clientset, *atomic.Int32) {
	t.Helper()
	q := quota("q", rl("pods", "2"), rl("pods", "0"))
	client := fake.NewClientset(&q)
	var writes atomic.Int32
	client.PrependReactor("update", "resourcequotas", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "status" {
			return false, nil, nil
		}
		conflict := apierrors.NewConflict(schema.GroupResource{Resource: "resourcequotas"}, "q", errors.New("conflict"))
		if writes.Add(1) <= conflicts {
			return true, nil, conflict
		}
		// Optimistic concurrency, as the API server does it.
		want := a.(k8stesting.UpdateAction).GetObject().(*corev1.ResourceQuota)
		gvr := corev1.SchemeGroupVersion.WithResource("resourcequotas")
		obj, err := client.Tracker().Get(gvr, want.Namespace, want.Name)
		if err != nil {
			return true, nil, err
		}
		cur := obj.(*corev1.ResourceQuota)
		if cur.ResourceVersion != want.ResourceVersion {
			return true, nil, conflict
		}
		rv, _ := strconv.Atoi(cur.ResourceVersion)
		next := want.DeepCopy()
		next.ResourceVersion = strconv.Itoa(rv + 1)
		return true, next, client.Tracker().Update(gvr, next, next.Namespace)
	})
	factory := informers.NewSharedInformerFactory(client, 0)
	p := New(client, factory, slog.New(slog.DiscardHandler), Options{})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); factory.Shutdown() })
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	return p, client, &writes
}

func usedPods(t *testing.T, client *fake.Clientset) string {
	t.Helper()
	q, err := client.CoreV1().ResourceQuotas("ns").Get(t.Context(), "q", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return usage.String(q.Status.Used)
}

func TestPluginCharges(t *testing.T) {
	p, client, writes := startPlugin(t, 1)
	ctx := t.Context()
	if err := p.Validate(ctx, createPod("a", false)); err != nil {
		t.Fatal(err)
	}
	if got := usedPods(t, client); got != "pods=1" {
		t.Errorf("used %s after a conflict and a retry, want pods=1", got)
	}
	if n := writes.Load(); n != 2 {
		t.Errorf("%d status writes, want 2 (one conflict)", n)
	}
	// The next check sees the plugin's own charge even if the cache has
	// not caught up yet.
	if err := p.Validate(ctx, createPod("b", false)); err != nil {
		t.Fatal(err)
	}
	if got := usedPods(t, client); got != "pods=2" {
		t.Errorf("used %s, want pods=2", got)
	}
	err := p.Validate(ctx, createPod("c", false))
	if err == nil || err.Error() != "exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2" {
		t.Errorf("third pod: %v", err)
	}
}

func TestPluginSkips(t *testing.T) {
	p, client, writes := startPlugin(t, 0)
	ctx := t.Context()
	for name, a := range map[string]*apiserver.Attributes{
		"dry run":         createPod("dry", true),
		"status write":    {Operation: apiserver.Update, Resource: podsGR, Subresource: "status", Namespace: "ns", Object: testPod(nil, nil), OldObject: testPod(nil, nil)},
		"cluster scoped":  {Operation: apiserver.Create, Resource: schema.GroupResource{Resource: "nodes"}, Object: &corev1.Node{}},
		"other namespace": {Operation: apiserver.Create, Resource: podsGR, Namespace: "free", Object: testPod(nil, nil)},
		"unchanged pod": {Operation: apiserver.Update, Resource: podsGR, Namespace: "ns",
			Object: testPod(nil, nil), OldObject: testPod(nil, nil)},
	} {
		if err := p.Validate(ctx, a); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if n := writes.Load(); n != 0 {
		t.Errorf("%d status writes, want none", n)
	}
	if got := usedPods(t, client); got != "pods=0" {
		t.Errorf("used %s", got)
	}
}

func TestPluginNotReady(t *testing.T) {
	client := fake.NewClientset()
	factory := informers.NewSharedInformerFactory(client, 0) // never started
	p := New(client, factory, slog.New(slog.DiscardHandler), Options{ReadyTimeout: 50 * time.Millisecond})
	err := p.Validate(t.Context(), createPod("a", false))
	if err == nil || err.Error() != "not yet ready to handle request" {
		t.Errorf("error %v", err)
	}
}
