package job_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"

	"skiff.dev/skiff/internal/controllers/garbagecollector"
	"skiff.dev/skiff/internal/controllers/job"
	"skiff.dev/skiff/internal/testenv"
)

// Annotations on a pod template tell the fake kubelet what to make of the
// pods: the phase to reach, the exit code and a delay.
const (
	phaseAnnotation = "fake.skiff.dev/phase"
	exitAnnotation  = "fake.skiff.dev/exit-code"
	delayAnnotation = "fake.skiff.dev/delay"
)

// decide is the fake kubelet's policy: what the pod's annotations say,
// else Running and Ready.
func decide(pod *corev1.Pod) testenv.PodOutcome {
	out := testenv.Running()
	if p := pod.Annotations[phaseAnnotation]; p != "" {
		out = testenv.PodOutcome{Phase: corev1.PodPhase(p)}
	}
	if v, err := strconv.Atoi(pod.Annotations[exitAnnotation]); err == nil {
		out.ExitCode = int32(v)
	}
	if d, err := time.ParseDuration(pod.Annotations[delayAnnotation]); err == nil {
		out.Delay = d
	}
	return out
}

// cluster is a control plane with a fake kubelet and the Job controller.
type cluster struct {
	env    *testenv.Env
	client kubernetes.Interface
}

// fast is the controller's configuration in tests: short backoff.
var fast = job.Options{BackoffBase: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond}

// startCluster starts a control plane, a fake kubelet and a Job controller.
func startCluster(t *testing.T) *cluster {
	t.Helper()
	cl := newCluster(t)
	cl.startKubelet(t)
	cl.startController(t, fast)
	return cl
}

// newCluster starts a control plane alone.
func newCluster(t *testing.T) *cluster {
	t.Helper()
	env := testenv.Start(t, testenv.WithoutControllers)
	return &cluster{env: env, client: env.Client}
}

func (cl *cluster) startKubelet(t *testing.T) {
	t.Helper()
	testenv.StartFakeKubelet(t, cl.client, decide)
}

// startController runs a Job controller on its own informers until the
// returned stop is called or the test ends.
func (cl *cluster) startController(t *testing.T, opts job.Options) (stop func()) {
	t.Helper()
	factory := informers.NewSharedInformerFactory(cl.client, 0)
	c := job.New(cl.client, factory, newRecorder(t, cl.client, "job-controller"), testenv.Logger(t), opts)
	return testenv.Run(t, "job controller", func(ctx context.Context) error {
		factory.Start(ctx.Done())
		defer factory.Shutdown()
		return c.Run(ctx, 2)
	})
}

// startGC runs the garbage collector, which foreground deletion needs.
func (cl *cluster) startGC(t *testing.T) {
	t.Helper()
	mc, err := metadata.NewForConfig(cl.env.Config)
	if err != nil {
		t.Fatal(err)
	}
	gc := garbagecollector.New(mc, testenv.Logger(t))
	testenv.Run(t, "garbage collector", func(ctx context.Context) error { return gc.Run(ctx, 2) })
}

// newRecorder records events into the cluster, as the daemon does.
func newRecorder(t *testing.T, client kubernetes.Interface, component string) record.EventRecorder {
	b := record.NewBroadcaster()
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	t.Cleanup(b.Shutdown)
	return b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: component})
}

func (cl *cluster) namespace(t *testing.T, name string) string {
	t.Helper()
	if _, err := cl.client.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return name
}

// newJob is a Job whose pods reach phase (Running when empty) with exit
// code exit.
func newJob(name string, phase corev1.PodPhase, exit int, delay time.Duration) *batchv1.Job {
	ann := map[string]string{}
	if phase != "" {
		ann[phaseAnnotation] = string(phase)
		ann[exitAnnotation] = strconv.Itoa(exit)
	}
	if delay > 0 {
		ann[delayAnnotation] = delay.String()
	}
	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: batchv1.JobSpec{
			BackoffLimit: ptr.To[int32](6),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Annotations: ann},
				Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					Containers:    []corev1.Container{{Name: "main", Image: "busybox", Command: []string{"true"}}},
				},
			},
		},
	}
}

func (cl *cluster) create(t *testing.T, ns string, j *batchv1.Job) *batchv1.Job {
	t.Helper()
	out, err := cl.client.BatchV1().Jobs(ns).Create(t.Context(), j, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// waitCondition waits until the Job has condition typ True and returns it.
func (cl *cluster) waitCondition(t *testing.T, ns, name string, typ batchv1.JobConditionType) *batchv1.Job {
	t.Helper()
	var got *batchv1.Job
	testenv.Eventually(t, "job "+name+" is "+string(typ), func(ctx context.Context) (bool, error) {
		j, err := cl.client.BatchV1().Jobs(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		got = j
		for _, c := range j.Status.Conditions {
			if c.Type == typ && c.Status == corev1.ConditionTrue {
				return true, nil
			}
		}
		return false, nil
	})
	return got
}

func (cl *cluster) pods(t *testing.T, ns string, j *batchv1.Job) []corev1.Pod {
	t.Helper()
	list, err := cl.client.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: batchv1.ControllerUidLabel + "=" + string(j.UID)})
	if err != nil {
		t.Fatal(err)
	}
	return list.Items
}

func condition(j *batchv1.Job, typ batchv1.JobConditionType) *batchv1.JobCondition {
	for i := range j.Status.Conditions {
		if j.Status.Conditions[i].Type == typ {
			return &j.Status.Conditions[i]
		}
	}
	return nil
}

// eventually polls cond until it holds, failing the test after 30s.
