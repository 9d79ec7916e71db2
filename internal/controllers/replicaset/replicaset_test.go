package replicaset_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/record"

	"skiff.dev/skiff/internal/controllers/garbagecollector"
	"skiff.dev/skiff/internal/controllers/podcontrol"
	"skiff.dev/skiff/internal/controllers/replicaset"
	"skiff.dev/skiff/internal/testenv"
)

func TestReplicaSet(t *testing.T) {
	env := testenv.Start(t, testenv.WithoutControllers)
	c := env.Client
	testenv.StartFakeKubelet(t, c, nil)
	start(t, env, c)
	ns := namespace(t, c, "rs")
	ctx := t.Context()

	orphan, err := c.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "orphan", Labels: map[string]string{"app": "web"}},
		Spec:       podSpec("img:v1"),
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := c.AppsV1().ReplicaSets(ns).Create(ctx, replicaSet("web", 3), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	var pods []corev1.Pod
	eventually(t, "3 pods, the orphan adopted, status reported", func(ctx context.Context) (bool, error) {
		pods = owned(t, c, rs)
		got, err := c.AppsV1().ReplicaSets(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		st := got.Status
		return len(pods) == 3 && slices.ContainsFunc(pods, func(p corev1.Pod) bool { return p.UID == orphan.UID }) &&
			st.Replicas == 3 && st.ReadyReplicas == 3 && st.AvailableReplicas == 3 && st.FullyLabeledReplicas == 3 &&
			st.ObservedGeneration == got.Generation, nil
	})
	for _, p := range pods {
		ref := metav1.GetControllerOf(&p)
		if !*ref.BlockOwnerDeletion || ref.Kind != "ReplicaSet" || ref.APIVersion != "apps/v1" {
			t.Errorf("pod %s: controller reference %+v", p.Name, ref)
		}
		if p.UID != orphan.UID && !strings.HasPrefix(p.Name, "web-") {
			t.Errorf("pod %s: not named after its ReplicaSet", p.Name)
		}
	}
	eventually(t, "SuccessfulCreate events for the 2 new pods", func(ctx context.Context) (bool, error) {
		return countEvents(ctx, t, c, ns, "web", podcontrol.ReasonSuccessfulCreate) == 2, nil
	})

	t.Run("deleted pod is replaced", func(t *testing.T) {
		victim := pods[0].Name
		if err := c.CoreV1().Pods(ns).Delete(ctx, victim, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "3 pods without the deleted one", func(ctx context.Context) (bool, error) {
			now := owned(t, c, rs)
			return len(now) == 3 && !slices.ContainsFunc(now, func(p corev1.Pod) bool { return p.Name == victim }), nil
		})
	})

	t.Run("relabelled pod is released", func(t *testing.T) {
		moved := owned(t, c, rs)[0].Name
		patch := []byte(`{"metadata":{"labels":{"app":"moved"}}}`)
		if _, err := c.CoreV1().Pods(ns).Patch(ctx, moved, types.StrategicMergePatchType, patch, metav1.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the pod released and replaced", func(ctx context.Context) (bool, error) {
			p, err := c.CoreV1().Pods(ns).Get(ctx, moved, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			now := owned(t, c, rs)
			return metav1.GetControllerOf(p) == nil && len(now) == 3, nil
		})
	})

	t.Run("scale subresource", func(t *testing.T) {
		for _, n := range []int32{5, 1, 3} {
			scaleTo(t, c, ns, "web", n)
			eventually(t, fmt.Sprintf("%d pods ready", n), func(ctx context.Context) (bool, error) {
				got, err := c.AppsV1().ReplicaSets(ns).Get(ctx, "web", metav1.GetOptions{})
				if err != nil {
					return false, err
				}
				return len(owned(t, c, rs)) == int(n) && got.Status.ReadyReplicas == n && got.Status.Replicas == n &&
					got.Status.ObservedGeneration == got.Generation, nil
			})
		}
		eventually(t, "SuccessfulDelete events", func(ctx context.Context) (bool, error) {
			return countEvents(ctx, t, c, ns, "web", podcontrol.ReasonSuccessfulDelete) >= 4, nil
		})
	})
}

// TestScaleDownOrder checks which pods a ReplicaSet deletes first:
// unscheduled, then pending, then not ready, then the one ready for less
// time. Pod statuses are written by the test (no kubelet).
func TestScaleDownOrder(t *testing.T) {
	env := testenv.Start(t, testenv.WithoutControllers)
	c := env.Client
	ctx := t.Context()
	ns := namespace(t, c, "order")
	now := time.Now()
	ready := func(since time.Duration) corev1.PodStatus {
		return corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{
			Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(now.Add(-since))}}}
	}
	pods := []struct {
		name   string
		node   string
		status corev1.PodStatus
	}{
		{name: "ready-old", node: "n1", status: ready(time.Hour)},
		{name: "ready-young", node: "n1", status: ready(time.Minute)},
		{name: "not-ready", node: "n1", status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{
			Type: corev1.PodReady, Status: corev1.ConditionFalse}}}},
		{name: "pending", node: "n1", status: corev1.PodStatus{Phase: corev1.PodPending}},
		{name: "unscheduled", status: ready(time.Hour)},
	}
	for _, p := range pods {
		spec := podSpec("img:v1")
		spec.NodeName = p.node
		created, err := c.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: p.name, Labels: map[string]string{"app": "web"}}, Spec: spec,
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		created.Status = p.status
		if _, err := c.CoreV1().Pods(ns).UpdateStatus(ctx, created, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	start(t, env, c)
	rs, err := c.AppsV1().ReplicaSets(ns).Create(ctx, replicaSet("web", 5), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "all 5 pods adopted", func(ctx context.Context) (bool, error) {
		return len(owned(t, c, rs)) == 5, nil
	})
	for i, want := range []string{"unscheduled", "pending", "not-ready", "ready-young"} {
		n := int32(4 - i)
		scaleTo(t, c, ns, "web", n)
		eventually(t, fmt.Sprintf("scaled to %d: %s deleted", n, want), func(ctx context.Context) (bool, error) {
			left := owned(t, c, rs)
			if len(left) > int(n) {
				return false, nil
			}
			if len(left) < int(n) || slices.ContainsFunc(left, func(p corev1.Pod) bool { return p.Name == want }) {
				names := []string{}
				for _, p := range left {
					names = append(names, p.Name)
				}
				t.Fatalf("scaled to %d: left %v, want %s gone", n, names, want)
			}
			return true, nil
		})
	}
}

// TestMinReadySeconds checks that pods count as available only after
// minReadySeconds, with no event needed to notice.
func TestMinReadySeconds(t *testing.T) {
	env := testenv.Start(t, testenv.WithoutControllers)
	c := env.Client
	testenv.StartFakeKubelet(t, c, nil)
	start(t, env, c)
	ns := namespace(t, c, "minready")
	rs := replicaSet("web", 2)
	rs.Spec.MinReadySeconds = 2
	if _, err := c.AppsV1().ReplicaSets(ns).Create(t.Context(), rs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	status := func(ctx context.Context) appsv1.ReplicaSetStatus {
		got, err := c.AppsV1().ReplicaSets(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return got.Status
	}
	eventually(t, "ready, not yet available", func(ctx context.Context) (bool, error) {
		st := status(ctx)
		if st.AvailableReplicas > 0 && st.ReadyReplicas < 2 {
			t.Fatalf("available before ready: %+v", st)
		}
		return st.ReadyReplicas == 2 && st.AvailableReplicas == 0, nil
	})
	eventually(t, "available after minReadySeconds", func(ctx context.Context) (bool, error) {
		return status(ctx).AvailableReplicas == 2, nil
	})
}

// TestFailedCreate checks what a ReplicaSet shows when the API refuses
// its pods, and that it slows down instead of hammering the server.
func TestFailedCreate(t *testing.T) {
	env := testenv.Start(t, testenv.WithoutControllers)
	var refuse atomic.Bool
	var creates atomic.Int32
	refuse.Store(true)
	client := refusingClient{Interface: env.Client, refuse: &refuse, creates: &creates}
	start(t, env, client)
	c := env.Client
	ns := namespace(t, c, "failed")
	if _, err := c.AppsV1().ReplicaSets(ns).Create(t.Context(), replicaSet("web", 20), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a FailedCreate event and a ReplicaFailure condition", func(ctx context.Context) (bool, error) {
		got, err := c.AppsV1().ReplicaSets(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		failed := slices.ContainsFunc(got.Status.Conditions, func(c appsv1.ReplicaSetCondition) bool {
			return c.Type == appsv1.ReplicaSetReplicaFailure && c.Reason == "FailedCreate" && strings.Contains(c.Message, "exceeded quota")
		})
		return failed && countEvents(ctx, t, c, ns, "web", podcontrol.ReasonFailedCreate) > 0, nil
	})
	// One attempt per sync (the first batch of one fails), syncs backing
	// off: far fewer than the 20 pods wanted.
	if n := creates.Load(); n >= 10 {
		t.Errorf("%d create attempts for a refusing API; slow start should stop at the first batch", n)
	}
	refuse.Store(false)
	eventually(t, "20 pods once the API accepts them, the condition gone", func(ctx context.Context) (bool, error) {
		got, err := c.AppsV1().ReplicaSets(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return got.Status.Replicas == 20 && len(got.Status.Conditions) == 0, nil
	})
}

// TestDeleteWithKubectl deletes ReplicaSets with the real kubectl: the
// default cascade takes the pods along, --cascade=orphan leaves them.
func TestDeleteWithKubectl(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the skiff binary")
	}
	kubectl := filepath.Join(filepath.Dir(testenv.Binary(t)), "kubectl")
	env := testenv.Start(t, testenv.WithoutControllers)
	c := env.Client
	testenv.StartFakeKubelet(t, c, nil)
	start(t, env, c)
	ns := namespace(t, c, "kubectl")
	run := func(args ...string) string {
		cmd := exec.CommandContext(t.Context(), kubectl, append([]string{"-n", ns}, args...)...)
		cmd.Env = append(os.Environ(), "KUBECONFIG="+env.Kubeconfig)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	cases := []struct {
		name     string
		args     []string
		wantPods bool
	}{
		{name: "orphan", args: []string{"--cascade=orphan"}, wantPods: true},
		{name: "background"},
		{name: "foreground", args: []string{"--cascade=foreground"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rs, err := c.AppsV1().ReplicaSets(ns).Create(t.Context(), replicaSet(tc.name, 2), metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			eventually(t, "2 pods", func(ctx context.Context) (bool, error) { return len(owned(t, c, rs)) == 2, nil })
			if out := run("describe", "rs", tc.name); !strings.Contains(out, "SuccessfulCreate") {
				t.Errorf("kubectl describe rs shows no SuccessfulCreate event:\n%s", out)
			}
			run(append([]string{"delete", "rs", tc.name, "--wait=true"}, tc.args...)...)
			eventually(t, "the ReplicaSet gone, its pods as the cascade says", func(ctx context.Context) (bool, error) {
				if _, err := c.AppsV1().ReplicaSets(ns).Get(ctx, tc.name, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
					return false, nil
				}
				pods, err := c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + tc.name})
				if err != nil {
					return false, err
				}
				if !tc.wantPods {
					return len(pods.Items) == 0, nil
				}
				for _, p := range pods.Items {
					if len(p.OwnerReferences) != 0 || p.DeletionTimestamp != nil {
						return false, nil
					}
				}
				return len(pods.Items) == 2, nil
			})
		})
	}
}

// scaleTo sets a ReplicaSet's replicas through the scale subresource,
// as kubectl scale does (no resourceVersion: last writer wins).
func scaleTo(t *testing.T, c kubernetes.Interface, ns, name string, n int32) {
	t.Helper()
	patch := []byte(fmt.Sprintf(`{"spec":{"replicas":%d}}`, n))
	if _, err := c.AppsV1().ReplicaSets(ns).Patch(t.Context(), name, types.MergePatchType, patch, metav1.PatchOptions{}, "scale"); err != nil {
		t.Fatal(err)
	}
}

// start runs the garbage collector and a ReplicaSet controller acting
// through client until the test ends.
func start(t *testing.T, env *testenv.Env, client kubernetes.Interface) {
	t.Helper()
	log := slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	gc := garbagecollector.New(metadata.NewForConfigOrDie(env.Config), log)
	testenv.Run(t, "garbage collector", func(ctx context.Context) error { return gc.Run(ctx, 2) })
	factory := informers.NewSharedInformerFactory(env.Client, 0)
	rc := replicaset.New(client, factory, recorder(t, env.Client, "replicaset-controller"), log, replicaset.Options{})
	testenv.Run(t, "replicaset controller", func(ctx context.Context) error {
		factory.Start(ctx.Done())
		defer factory.Shutdown()
		return rc.Run(ctx, 2)
	})
}

func recorder(t *testing.T, c kubernetes.Interface, component string) record.EventRecorder {
	sink := &closingSink{EventSink: &typedcorev1.EventSinkImpl{Interface: c.CoreV1().Events("")}}
	b := record.NewBroadcaster()
	b.StartRecordingToSink(sink)
	t.Cleanup(func() { sink.closed.Store(true); b.Shutdown() })
	return b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: component})
}

// closingSink drops events once closed, so that events still queued when
// a test ends are not written (and retried, and logged) while the server
// goes away.
type closingSink struct {
	record.EventSink
	closed atomic.Bool
}

func (s *closingSink) Create(e *corev1.Event) (*corev1.Event, error) {
	if s.closed.Load() {
		return e, nil
	}
	return s.EventSink.Create(e)
}

func (s *closingSink) Update(e *corev1.Event) (*corev1.Event, error) {
	if s.closed.Load() {
		return e, nil
	}
	return s.EventSink.Update(e)
}

func (s *closingSink) Patch(e *corev1.Event, data []byte) (*corev1.Event, error) {
	if s.closed.Load() {
		return e, nil
	}
	return s.EventSink.Patch(e, data)
}

type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func namespace(t *testing.T, c kubernetes.Interface, name string) string {
	t.Helper()
	if _, err := c.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return name
}

func podSpec(image string) corev1.PodSpec {
	return corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}}
}

func replicaSet(name string, n int32) *appsv1.ReplicaSet {
	labels := map[string]string{"app": name}
	if name == "web" {
		labels = map[string]string{"app": "web"}
	}
	return &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.ReplicaSetSpec{
			Replicas: &n,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: podSpec("img:v1")},
		},
	}
}

// owned lists the active pods rs controls.
func owned(t *testing.T, c kubernetes.Interface, rs *appsv1.ReplicaSet) []corev1.Pod {
	t.Helper()
	list, err := c.CoreV1().Pods(rs.Namespace).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []corev1.Pod
	for _, p := range list.Items {
		if ref := metav1.GetControllerOf(&p); ref != nil && ref.UID == rs.UID && p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}

func countEvents(ctx context.Context, t *testing.T, c kubernetes.Interface, ns, name, reason string) int {
	list, err := c.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range list.Items {
		if e.Reason == reason {
			n += int(max(e.Count, 1))
		}
	}
	return n
}

func eventually(t *testing.T, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		ok, err := cond(ctx)
		if err != nil && !apierrors.IsNotFound(err) {
			return false, err
		}
		return ok, nil
	})
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// refusingClient refuses pod creations while refuse is set, as a quota
// would, and counts the attempts.
type refusingClient struct {
	kubernetes.Interface
	refuse  *atomic.Bool
	creates *atomic.Int32
}

func (c refusingClient) CoreV1() typedcorev1.CoreV1Interface {
	return refusingCore{CoreV1Interface: c.Interface.CoreV1(), c: c}
}

type refusingCore struct {
	typedcorev1.CoreV1Interface
	c refusingClient
}

func (r refusingCore) Pods(ns string) typedcorev1.PodInterface {
	return refusingPods{PodInterface: r.CoreV1Interface.Pods(ns), c: r.c}
}

type refusingPods struct {
	typedcorev1.PodInterface
	c refusingClient
}

func (r refusingPods) Create(ctx context.Context, pod *corev1.Pod, opts metav1.CreateOptions) (*corev1.Pod, error) {
	r.c.creates.Add(1)
	if r.c.refuse.Load() {
		return nil, apierrors.NewForbidden(corev1.Resource("pods"), "", errors.New("exceeded quota: pods"))
	}
	return r.PodInterface.Create(ctx, pod, opts)
}
