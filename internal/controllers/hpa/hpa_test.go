package hpa_test

import (
	"context"
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
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
	clocktesting "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"skiff.dev/skiff/internal/controllers/hpa"
	"skiff.dev/skiff/internal/testenv"
)

// cluster is an API server with a fake kubelet, a stand-in for the
// Deployment controller, fake pod metrics and the HPA controller on a
// fake clock.
type cluster struct {
	env    *testenv.Env
	client kubernetes.Interface
	clock  *clocktesting.FakeClock
	// cpu is what every pod uses, in millicores.
	cpu atomic.Int64
}

// window is the shortened scale-down stabilization window.
const window = time.Minute

func startCluster(t *testing.T) *cluster {
	t.Helper()
	env := testenv.Start(t, testenv.WithoutControllers)
	testenv.StartFakeKubelet(t, env.Client, nil)
	// The fake clock runs ahead of the pods' real start times, so their
	// CPU samples are past the initialization period.
	cl := &cluster{env: env, client: env.Client, clock: clocktesting.NewFakeClock(time.Now().Add(10 * time.Minute))}
	metrics := &hpa.FakeMetrics{Client: env.Client, Clock: cl.clock, Usage: func(pod *corev1.Pod) map[string]corev1.ResourceList {
		return map[string]corev1.ResourceList{"web": {corev1.ResourceCPU: *resource.NewMilliQuantity(cl.cpu.Load(), resource.DecimalSI)}}
	}}
	factory := informers.NewSharedInformerFactory(env.Client, 0)
	c := hpa.New(env.Client, factory, newRecorder(t, env.Client), testLogger(t), hpa.Options{
		Metrics: metrics, Clock: cl.clock, SyncPeriod: 50 * time.Millisecond, DownscaleStabilization: window,
	})
	testenv.Run(t, "hpa controller", func(ctx context.Context) error {
		factory.Start(ctx.Done())
		defer factory.Shutdown()
		return c.Run(ctx, 2)
	})
	return cl
}

func newRecorder(t *testing.T, client kubernetes.Interface) record.EventRecorder {
	b := record.NewBroadcaster()
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	t.Cleanup(b.Shutdown)
	return b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "horizontal-pod-autoscaler"})
}

// deployment creates Deployment name with replicas pods requesting 100m
// CPU each, and plays its controller: it keeps that many pods and the
// status's replica count, and records the most replicas ever asked for.
func (cl *cluster) deployment(t *testing.T, ns, name string, replicas int32) (most *atomic.Int32) {
	t.Helper()
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(replicas),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "web:1", Resources: corev1.ResourceRequirements{
					Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")},
				}}}},
			},
		},
	}
	if _, err := cl.client.AppsV1().Deployments(ns).Create(t.Context(), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	most = &atomic.Int32{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = wait.PollUntilContextCancel(ctx, 20*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			cl.reconcileDeployment(ctx, ns, name, most)
			return false, nil
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	return most
}

func (cl *cluster) reconcileDeployment(ctx context.Context, ns, name string, most *atomic.Int32) {
	d, err := cl.client.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return
	}
	want := *d.Spec.Replicas
	if want > most.Load() {
		most.Store(want)
	}
	list, err := cl.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=" + name})
	if err != nil {
		return
	}
	var pods []corev1.Pod
	for _, p := range list.Items {
		if p.DeletionTimestamp == nil {
			pods = append(pods, p)
		}
	}
	for n := int32(len(pods)); n < want; n++ {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: name + "-", Labels: d.Spec.Template.Labels}, Spec: d.Spec.Template.Spec}
		_, _ = cl.client.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{})
	}
	for i := int(want); i < len(pods); i++ {
		_ = cl.client.CoreV1().Pods(ns).Delete(ctx, pods[i].Name, metav1.DeleteOptions{})
	}
	if d.Status.Replicas != want {
		d.Status.Replicas = want
		_, _ = cl.client.AppsV1().Deployments(ns).UpdateStatus(ctx, d, metav1.UpdateOptions{})
	}
}

func (cl *cluster) namespace(t *testing.T, name string) string {
	t.Helper()
	if _, err := cl.client.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return name
}

func (cl *cluster) replicas(ctx context.Context, ns, name string) (int32, error) {
	scale, err := cl.client.AppsV1().Deployments(ns).GetScale(ctx, name, metav1.GetOptions{})
	if err != nil {
		return 0, err
	}
	return scale.Spec.Replicas, nil
}

// waitRescale waits for the HPA's SuccessfulRescale event with msg.
func (cl *cluster) waitRescale(t *testing.T, ns, name, msg string) {
	t.Helper()
	eventually(t, "event SuccessfulRescale: "+msg, func(ctx context.Context) (bool, error) {
		events, err := cl.client.CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		return slices.ContainsFunc(events.Items, func(e corev1.Event) bool {
			return e.InvolvedObject.Kind == "HorizontalPodAutoscaler" && e.InvolvedObject.Name == name &&
				e.Reason == "SuccessfulRescale" && e.Message == msg
		}), nil
	})
}

func condition(h *autoscalingv2.HorizontalPodAutoscaler, typ autoscalingv2.HorizontalPodAutoscalerConditionType) string {
	for _, c := range h.Status.Conditions {
		if c.Type == typ {
			return string(c.Status) + "/" + c.Reason
		}
	}
	return ""
}

// TestScaleUpAndDown: CPU above target scales the Deployment up through
// its scale subresource, never past maxReplicas; when usage falls the
// HPA holds the size for the stabilization window, then scales down.
func TestScaleUpAndDown(t *testing.T) {
	cl := startCluster(t)
	ns := cl.namespace(t, "autoscale")
	most := cl.deployment(t, ns, "web", 1)
	cl.cpu.Store(90) // 90% of the 100m request
	h := &autoscalingv2.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			MinReplicas:    ptr.To[int32](1),
			MaxReplicas:    5,
			Metrics: []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
				Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To[int32](50)},
			}}},
		},
	}
	if _, err := cl.client.AutoscalingV2().HorizontalPodAutoscalers(ns).Create(t.Context(), h, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	hpaObj := func(ctx context.Context) (*autoscalingv2.HorizontalPodAutoscaler, error) {
		return cl.client.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, "web", metav1.GetOptions{})
	}
	eventually(t, "the HPA scales up to its maximum and says so", func(ctx context.Context) (bool, error) {
		got, err := hpaObj(ctx)
		if err != nil {
			return false, err
		}
		st := got.Status
		return st.CurrentReplicas == 5 && st.DesiredReplicas == 5 && len(st.CurrentMetrics) == 1 &&
			ptr.Deref(st.CurrentMetrics[0].Resource.Current.AverageUtilization, 0) == 90 &&
			condition(got, autoscalingv2.AbleToScale) == "True/ReadyForNewScale" &&
			condition(got, autoscalingv2.ScalingActive) == "True/ValidMetricFound" &&
			condition(got, autoscalingv2.ScalingLimited) == "True/TooManyReplicas", nil
	})
	cl.waitRescale(t, ns, "web", "New size: 2; reason: cpu resource utilization (percentage of request) above target")
	if m := most.Load(); m > 5 {
		t.Errorf("scaled to %d, past maxReplicas 5", m)
	}

	cl.cpu.Store(10)
	eventually(t, "the HPA holds the size while recent recommendations were higher", func(ctx context.Context) (bool, error) {
		got, err := hpaObj(ctx)
		if err != nil {
			return false, err
		}
		return condition(got, autoscalingv2.AbleToScale) == "True/ScaleDownStabilized" &&
			ptr.Deref(got.Status.CurrentMetrics[0].Resource.Current.AverageUtilization, 0) == 10, nil
	})
	if n, err := cl.replicas(t.Context(), ns, "web"); err != nil || n != 5 {
		t.Fatalf("replicas %d (%v) within the stabilization window, want 5", n, err)
	}
	cl.clock.Step(window + time.Second)
	eventually(t, "the HPA scales down after the window", func(ctx context.Context) (bool, error) {
		n, err := cl.replicas(ctx, ns, "web")
		return n == 1, err
	})
	cl.waitRescale(t, ns, "web", "New size: 1; reason: All metrics below target")
}

// TestKubectlAutoscale: `kubectl autoscale` (the real kubectl) makes an
// HPA the controller acts on, and `kubectl describe` shows what it did.
func TestKubectlAutoscale(t *testing.T) {
	bin := testenv.Binary(t)
	cl := startCluster(t)
	ns := cl.namespace(t, "kubectl")
	cl.deployment(t, ns, "x", 1)
	cl.cpu.Store(90)
	kubectl := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), filepath.Join(filepath.Dir(bin), "kubectl"), append([]string{"-n", ns}, args...)...)
		cmd.Env = append(os.Environ(), "KUBECONFIG="+cl.env.Kubeconfig)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	kubectl("autoscale", "deployment", "x", "--cpu-percent=50", "--min=1", "--max=10")
	eventually(t, "the deployment is scaled up", func(ctx context.Context) (bool, error) {
		n, err := cl.replicas(ctx, ns, "x")
		return n >= 2, err
	})
	out := kubectl("describe", "hpa", "x")
	for _, want := range []string{"SuccessfulRescale", "New size: 2; reason: cpu resource utilization (percentage of request) above target", "ScalingActive"} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl describe hpa lacks %q:\n%s", want, out)
		}
	}
	fmt.Fprintln(testWriter{t}, out)
}

func eventually(t *testing.T, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(t.Context(), 20*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		ok, err := cond(ctx)
		last = err
		return ok, nil
	})
	if err != nil {
		t.Fatalf("waiting until %s: %v (last error: %v)", what, err, last)
	}
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// TestConditions: what keeps an HPA from scaling shows in its conditions.
func TestConditions(t *testing.T) {
	cl := startCluster(t)
	ns := cl.namespace(t, "conditions")
	cl.deployment(t, ns, "web", 2)
	cl.cpu.Store(50)
	cases := []struct {
		name   string
		target autoscalingv2.CrossVersionObjectReference
		metric autoscalingv2.MetricSpec
		// want is a condition as type=status/reason.
		want map[autoscalingv2.HorizontalPodAutoscalerConditionType]string
	}{
		{
			name:   "no such target",
			target: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "nope"},
			want:   map[autoscalingv2.HorizontalPodAutoscalerConditionType]string{autoscalingv2.AbleToScale: "False/FailedGetScale"},
		},
		{
			name:   "a kind Skiff cannot scale",
			target: autoscalingv2.CrossVersionObjectReference{APIVersion: "example.com/v1", Kind: "Widget", Name: "w"},
			want:   map[autoscalingv2.HorizontalPodAutoscalerConditionType]string{autoscalingv2.AbleToScale: "False/FailedGetScale"},
		},
		{
			name: "memory has no request",
			metric: autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
				Name: corev1.ResourceMemory, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To[int32](50)}}},
			want: map[autoscalingv2.HorizontalPodAutoscalerConditionType]string{
				autoscalingv2.AbleToScale: "True/SucceededGetScale", autoscalingv2.ScalingActive: "False/FailedGetResourceMetric"},
		},
		{
			name: "external metrics are not supported",
			metric: autoscalingv2.MetricSpec{Type: autoscalingv2.ExternalMetricSourceType, External: &autoscalingv2.ExternalMetricSource{
				Metric: autoscalingv2.MetricIdentifier{Name: "queue"}, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.ValueMetricType, Value: resource.NewQuantity(1, resource.DecimalSI)}}},
			want: map[autoscalingv2.HorizontalPodAutoscalerConditionType]string{autoscalingv2.ScalingActive: "False/InvalidMetricSourceType"},
		},
		{
			name: "at target",
			want: map[autoscalingv2.HorizontalPodAutoscalerConditionType]string{
				autoscalingv2.AbleToScale: "True/ReadyForNewScale", autoscalingv2.ScalingActive: "True/ValidMetricFound", autoscalingv2.ScalingLimited: "False/DesiredWithinRange"},
		},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			name := fmt.Sprintf("hpa-%d", i)
			target := tc.target
			if target.Name == "" {
				target = autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}
			}
			metric := tc.metric
			if metric.Type == "" {
				metric = autoscalingv2.MetricSpec{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{
					Name: corev1.ResourceCPU, Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: ptr.To[int32](50)}}}
			}
			h := &autoscalingv2.HorizontalPodAutoscaler{
				ObjectMeta: metav1.ObjectMeta{Name: name},
				Spec:       autoscalingv2.HorizontalPodAutoscalerSpec{ScaleTargetRef: target, MaxReplicas: 5, Metrics: []autoscalingv2.MetricSpec{metric}},
			}
			if _, err := cl.client.AutoscalingV2().HorizontalPodAutoscalers(ns).Create(t.Context(), h, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			var got *autoscalingv2.HorizontalPodAutoscaler
			eventually(t, fmt.Sprintf("conditions %v", tc.want), func(ctx context.Context) (bool, error) {
				var err error
				if got, err = cl.client.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
					return false, err
				}
				for typ, want := range tc.want {
					if condition(got, typ) != want {
						return false, nil
					}
				}
				return true, nil
			})
		})
	}
	if n, err := cl.replicas(t.Context(), ns, "web"); err != nil || n != 2 {
		t.Errorf("replicas %d (%v), want 2 untouched", n, err)
	}
}
