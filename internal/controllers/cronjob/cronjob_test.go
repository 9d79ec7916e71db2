package cronjob_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/record"
	testingclock "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"skiff.dev/skiff/internal/controllers/cronjob"
	"skiff.dev/skiff/internal/controllers/job"
	"skiff.dev/skiff/internal/testenv"
)

// cluster is a control plane with a CronJob controller on a fake clock.
type cluster struct {
	env    *testenv.Env
	client kubernetes.Interface
	clock  *testingclock.FakeClock
}

// startCluster starts a control plane and a CronJob controller whose
// clock stands at the start of the given time.
func startCluster(t *testing.T, start time.Time) *cluster {
	t.Helper()
	env := testenv.Start(t, testenv.WithoutControllers)
	cl := &cluster{env: env, client: env.Client, clock: testingclock.NewFakeClock(start)}
	factory := informers.NewSharedInformerFactory(cl.client, 0)
	c := cronjob.New(cl.client, factory, newRecorder(t, cl.client, "cronjob-controller"), testenv.Logger(t), cronjob.Options{Clock: cl.clock})
	testenv.Run(t, "cronjob controller", func(ctx context.Context) error {
		factory.Start(ctx.Done())
		defer factory.Shutdown()
		return c.Run(ctx, 2)
	})
	return cl
}

// startJobs runs the Job controller (on the real clock) and a fake
// kubelet, so the CronJob's Jobs run and finish.
func (cl *cluster) startJobs(t *testing.T) {
	t.Helper()
	testenv.StartFakeKubelet(t, cl.client, func(pod *corev1.Pod) testenv.PodOutcome {
		if pod.Annotations["fake.skiff.dev/fail"] == "true" {
			return testenv.PodOutcome{Phase: corev1.PodFailed, ExitCode: 1}
		}
		return testenv.PodOutcome{Phase: corev1.PodSucceeded}
	})
	factory := informers.NewSharedInformerFactory(cl.client, 0)
	c := job.New(cl.client, factory, newRecorder(t, cl.client, "job-controller"), testenv.Logger(t), job.Options{BackoffBase: 10 * time.Millisecond})
	testenv.Run(t, "job controller", func(ctx context.Context) error {
		factory.Start(ctx.Done())
		defer factory.Shutdown()
		return c.Run(ctx, 2)
	})
}

// createTicking creates cj and then sets the clock half a minute into the
// minute of its creation (as stored), so that each step of a minute passes
// exactly one minute boundary after the creation. It returns the start of
// that minute.
func (cl *cluster) createTicking(t *testing.T, cj *batchv1.CronJob) (*batchv1.CronJob, time.Time) {
	t.Helper()
	cj = cl.create(t, cj)
	m := cj.CreationTimestamp.Time.Truncate(time.Minute)
	cl.clock.SetTime(m.Add(30 * time.Second))
	return cj, m
}

func newCronJob(name, schedule string, policy batchv1.ConcurrencyPolicy) *batchv1.CronJob {
	return &batchv1.CronJob{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: batchv1.CronJobSpec{
			Schedule:          schedule,
			ConcurrencyPolicy: policy,
			JobTemplate: batchv1.JobTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}, Annotations: map[string]string{"note": "from the template"}},
				Spec: batchv1.JobSpec{
					BackoffLimit: ptr.To[int32](0),
					Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
						RestartPolicy: corev1.RestartPolicyNever,
						Containers:    []corev1.Container{{Name: "main", Image: "busybox", Command: []string{"true"}}},
					}},
				},
			},
		},
	}
}

func (cl *cluster) create(t *testing.T, cj *batchv1.CronJob) *batchv1.CronJob {
	t.Helper()
	ns := strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-"))
	if _, err := cl.client.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	out, err := cl.client.BatchV1().CronJobs(ns).Create(t.Context(), cj, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// jobs returns the CronJob's Jobs, oldest name first.
func (cl *cluster) jobs(t *testing.T, cj *batchv1.CronJob) []batchv1.Job {
	t.Helper()
	list, err := cl.client.BatchV1().Jobs(cj.Namespace).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []batchv1.Job
	for _, j := range list.Items {
		if metav1.IsControlledBy(&j, cj) {
			out = append(out, j)
		}
	}
	slices.SortFunc(out, func(a, b batchv1.Job) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func names(jobs []batchv1.Job) []string {
	var out []string
	for _, j := range jobs {
		out = append(out, j.Name)
	}
	return out
}

// waitJobs waits until the CronJob's Jobs are exactly want (by name).
func (cl *cluster) waitJobs(t *testing.T, cj *batchv1.CronJob, want ...string) {
	t.Helper()
	slices.Sort(want)
	var got []string
	testenv.Eventually(t, fmt.Sprintf("jobs are %v", want), func(ctx context.Context) (bool, error) {
		got = names(cl.jobs(t, cj))
		return slices.Equal(got, want), nil
	})
}

// stayJobs checks that the Jobs stay exactly want for a moment.
func (cl *cluster) stayJobs(t *testing.T, cj *batchv1.CronJob, want ...string) {
	t.Helper()
	slices.Sort(want)
	for range 10 {
		if got := names(cl.jobs(t, cj)); !slices.Equal(got, want) {
			t.Fatalf("jobs = %v, want %v", got, want)
		}
		time.Sleep(30 * time.Millisecond)
	}
}

func (cl *cluster) get(t *testing.T, cj *batchv1.CronJob) *batchv1.CronJob {
	t.Helper()
	out, err := cl.client.BatchV1().CronJobs(cj.Namespace).Get(t.Context(), cj.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// jobAt is the name of cj's Job for scheduled time at.
func jobAt(cj *batchv1.CronJob, at time.Time) string {
	return fmt.Sprintf("%s-%d", cj.Name, at.Unix()/60)
}

// finish marks a Job Complete (or Failed) as the Job controller would.
func (cl *cluster) finish(t *testing.T, ns, name string, typ batchv1.JobConditionType) {
	t.Helper()
	j, err := cl.client.BatchV1().Jobs(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	now := metav1.Now()
	j.Status.StartTime = &now
	j.Status.Conditions = append(j.Status.Conditions, batchv1.JobCondition{Type: typ, Status: corev1.ConditionTrue, LastTransitionTime: now})
	if typ == batchv1.JobComplete {
		j.Status.CompletionTime = &now
	}
	if _, err := cl.client.BatchV1().Jobs(ns).UpdateStatus(t.Context(), j, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func newRecorder(t *testing.T, client kubernetes.Interface, component string) record.EventRecorder {
	b := record.NewBroadcaster()
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	t.Cleanup(b.Shutdown)
	return b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: component})
}

// eventually polls cond until it holds, failing the test after 30s.
