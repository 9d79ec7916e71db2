package deployment_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/record"

	"skiff.dev/skiff/internal/controllers/deployment"
	"skiff.dev/skiff/internal/controllers/garbagecollector"
	"skiff.dev/skiff/internal/controllers/podcontrol"
	"skiff.dev/skiff/internal/controllers/replicaset"
	"skiff.dev/skiff/internal/testenv"
)

// cluster is an API server with the garbage collector running and a
// FakeKubelet playing the node.
type cluster struct {
	t   testing.TB
	env *testenv.Env
	c   kubernetes.Interface
	log *slog.Logger
}

// newCluster starts a server without controllers, the garbage collector
// and a FakeKubelet deciding pods' fate with decide (nil: Running and
// Ready after a short delay, so that rollouts take visible steps).
func newCluster(t testing.TB, decide func(*corev1.Pod) testenv.PodOutcome) *cluster {
	t.Helper()
	env := testenv.Start(t, testenv.WithoutControllers)
	if decide == nil {
		decide = readyAfter(30 * time.Millisecond)
	}
	testenv.StartFakeKubelet(t, env.Client, decide)
	k := &cluster{t: t, env: env, c: env.Client,
		log: slog.New(slog.NewTextHandler(testLog{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	gc := garbagecollector.New(metadata.NewForConfigOrDie(env.Config), k.log)
	testenv.Run(t, "garbage collector", func(ctx context.Context) error { return gc.Run(ctx, 2) })
	return k
}

func readyAfter(d time.Duration) func(*corev1.Pod) testenv.PodOutcome {
	return func(*corev1.Pod) testenv.PodOutcome {
		o := testenv.Running()
		o.Delay = d
		return o
	}
}

// startControllers runs a ReplicaSet and a Deployment controller, each on
// its own informers, until the returned stop is called (or the test ends).
func (k *cluster) startControllers() (stop func()) {
	k.t.Helper()
	factory := informers.NewSharedInformerFactory(k.c, 0)
	rc := replicaset.New(k.c, factory, k.recorder("replicaset-controller"), k.log, replicaset.Options{})
	dc := deployment.New(k.c, factory, k.recorder("deployment-controller"), k.log, deployment.Options{})
	return testenv.Run(k.t, "controllers", func(ctx context.Context) error {
		factory.Start(ctx.Done())
		defer factory.Shutdown()
		var wg sync.WaitGroup
		var rerr, derr error
		wg.Go(func() { rerr = rc.Run(ctx, 2) })
		wg.Go(func() { derr = dc.Run(ctx, 2) })
		wg.Wait()
		if rerr != nil {
			return rerr
		}
		return derr
	})
}

func (k *cluster) recorder(component string) record.EventRecorder {
	sink := &closingSink{EventSink: &typedcorev1.EventSinkImpl{Interface: k.c.CoreV1().Events("")}}
	b := record.NewBroadcaster()
	b.StartRecordingToSink(sink)
	k.t.Cleanup(func() { sink.closed.Store(true); b.Shutdown() })
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

func (k *cluster) namespace(name string) string {
	k.t.Helper()
	if _, err := k.c.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		k.t.Fatal(err)
	}
	return name
}

// kubectl runs the real kubectl (the skiff binary under that name) in
// namespace ns and returns its combined output and error.
func (k *cluster) kubectl(ns string, args ...string) (string, error) {
	bin := filepath.Join(filepath.Dir(testenv.Binary(k.t)), "kubectl")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{"-n", ns}, args...)...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+k.env.Kubeconfig)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// mustKubectl is kubectl that fails the test on an error.
func (k *cluster) mustKubectl(ns string, args ...string) string {
	k.t.Helper()
	out, err := k.kubectl(ns, args...)
	if err != nil {
		k.t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// newDeployment is a Deployment of image with app=name pods.
func newDeployment(name, image string, n int32, strategy appsv1.DeploymentStrategy) *appsv1.Deployment {
	labels := map[string]string{"app": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &n,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Strategy: strategy,
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
			},
		},
	}
}

func rollingUpdate(surge, unavailable int) appsv1.DeploymentStrategy {
	s, u := intstr.FromInt(surge), intstr.FromInt(unavailable)
	return appsv1.DeploymentStrategy{Type: appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: &s, MaxUnavailable: &u}}
}

// setImage changes a Deployment's image, as kubectl set image does.
func (k *cluster) setImage(ns, name, image string) {
	k.t.Helper()
	patch := fmt.Sprintf(`{"spec":{"template":{"spec":{"containers":[{"name":"app","image":%q}]}}}}`, image)
	if _, err := k.c.AppsV1().Deployments(ns).Patch(context.Background(), name, types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		k.t.Fatal(err)
	}
}

// waitComplete waits until the Deployment has rolled out its current
// template: what kubectl rollout status waits for.
func (k *cluster) waitComplete(ns, name string) *appsv1.Deployment {
	k.t.Helper()
	var d *appsv1.Deployment
	k.eventually(fmt.Sprintf("deployment %s complete", name), func(ctx context.Context) (bool, error) {
		var err error
		if d, err = k.c.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
			return false, err
		}
		n := *d.Spec.Replicas
		st := d.Status
		return st.ObservedGeneration >= d.Generation && st.UpdatedReplicas == n && st.Replicas == n &&
			st.AvailableReplicas == n && st.ReadyReplicas == n, nil
	})
	return d
}

// activePods lists pods not finished and not being deleted, with their
// images.
func (k *cluster) activePods(ns string) (images []string) {
	k.t.Helper()
	list, err := k.c.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		k.t.Fatal(err)
	}
	for _, p := range list.Items {
		if podcontrol.IsActive(&p) {
			images = append(images, p.Spec.Containers[0].Image)
		}
	}
	return images
}

func (k *cluster) eventually(what string, cond func(ctx context.Context) (bool, error)) {
	k.t.Helper()
	err := wait.PollUntilContextTimeout(context.Background(), 20*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		ok, err := cond(ctx)
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return ok, err
	})
	if err != nil {
		k.t.Fatalf("%s: %v", what, err)
	}
}

type testLog struct{ t testing.TB }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// podWatch follows a namespace's pods through a watch and checks an
// invariant on every state the store passes through (each watch event is
// one step of the store's history), not on samples.
type podWatch struct {
	t          testing.TB
	mu         sync.Mutex
	pods       map[types.UID]*corev1.Pod
	check      func(pods []*corev1.Pod) string
	violations []string
	states     int
}

func (k *cluster) watchPods(ns string) *podWatch {
	k.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	list, err := k.c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		k.t.Fatal(err)
	}
	w := &podWatch{t: k.t, pods: map[types.UID]*corev1.Pod{}}
	for i := range list.Items {
		w.pods[list.Items[i].UID] = &list.Items[i]
	}
	wi, err := k.c.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		k.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range wi.ResultChan() {
			w.apply(ev)
		}
	}()
	k.t.Cleanup(func() { cancel(); wi.Stop(); <-done })
	return w
}

func (w *podWatch) apply(ev watch.Event) {
	pod, ok := ev.Object.(*corev1.Pod)
	if !ok {
		w.mu.Lock()
		w.violations = append(w.violations, fmt.Sprintf("watch: unexpected %s event %v", ev.Type, ev.Object))
		w.mu.Unlock()
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if ev.Type == watch.Deleted {
		delete(w.pods, pod.UID)
	} else {
		w.pods[pod.UID] = pod
	}
	if w.check == nil {
		return
	}
	w.states++
	pods := make([]*corev1.Pod, 0, len(w.pods))
	for _, p := range w.pods {
		pods = append(pods, p)
	}
	if v := w.check(pods); v != "" && len(w.violations) < 20 {
		w.violations = append(w.violations, fmt.Sprintf("after %s %s: %s", ev.Type, pod.Name, v))
	}
}

// arm checks check from now on (nil: stop checking) and returns the
// violations seen since the last arm.
func (w *podWatch) arm(check func(pods []*corev1.Pod) string) (violations []string, states int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	violations, states = w.violations, w.states
	w.check, w.violations, w.states = check, nil, 0
	return violations, states
}

// disarm stops checking and fails the test on violations.
func (w *podWatch) disarm() {
	w.t.Helper()
	violations, states := w.arm(nil)
	for _, v := range violations {
		w.t.Error(v)
	}
	if states == 0 {
		w.t.Error("the pod watch saw no states while armed")
	}
}

// rollingBounds is the rolling update invariant: at most max pods that
// are not being deleted, at least min of them ready.
func rollingBounds(minReady, maxPods int) func(pods []*corev1.Pod) string {
	return func(pods []*corev1.Pod) string {
		active, ready := 0, 0
		for _, p := range pods {
			if !podcontrol.IsActive(p) {
				continue
			}
			active++
			if podcontrol.IsReady(p) {
				ready++
			}
		}
		switch {
		case active > maxPods:
			return fmt.Sprintf("%d pods, more than %d", active, maxPods)
		case ready < minReady:
			return fmt.Sprintf("%d ready pods, fewer than %d", ready, minReady)
		}
		return ""
	}
}
