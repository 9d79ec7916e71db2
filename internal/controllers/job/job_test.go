package job_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
	testingclock "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"

	"skiff.dev/skiff/internal/controllers/job"
	"skiff.dev/skiff/internal/testenv"
)

// TestBackoffLimit: pods that always fail are replaced until backoffLimit
// is exceeded, which takes exactly backoffLimit+1 pods.
func TestBackoffLimit(t *testing.T) {
	cl := startCluster(t)
	ns := cl.namespace(t, "backoff")
	j := newJob("fails", corev1.PodFailed, 1, 0)
	j.Spec.BackoffLimit = ptr.To[int32](4)
	j = cl.create(t, ns, j)

	got := cl.waitCondition(t, ns, j.Name, batchv1.JobFailed)
	if c := condition(got, batchv1.JobFailed); c.Reason != batchv1.JobReasonBackoffLimitExceeded {
		t.Errorf("Failed reason = %q, want %q", c.Reason, batchv1.JobReasonBackoffLimitExceeded)
	}
	if c := condition(got, batchv1.JobFailureTarget); c == nil || c.Status != corev1.ConditionTrue {
		t.Errorf("no FailureTarget condition before Failed: %+v", got.Status.Conditions)
	}
	if got.Status.Failed != 5 || got.Status.Succeeded != 0 || got.Status.Active != 0 {
		t.Errorf("status failed/succeeded/active = %d/%d/%d, want 5/0/0", got.Status.Failed, got.Status.Succeeded, got.Status.Active)
	}
	if got.Status.CompletionTime != nil {
		t.Errorf("completionTime set on a failed job: %v", got.Status.CompletionTime)
	}
	// Nothing more happens: still exactly five pods, none holding the
	// tracking finalizer.
	time.Sleep(300 * time.Millisecond)
	pods := cl.pods(t, ns, j)
	if len(pods) != 5 {
		t.Errorf("%d pods created, want exactly 5", len(pods))
	}
	for _, p := range pods {
		if slices.Contains(p.Finalizers, batchv1.JobTrackingFinalizer) {
			t.Errorf("pod %s still has the tracking finalizer", p.Name)
		}
	}
}

// TestParallelism: completions 3, parallelism 2 completes with exactly 3
// succeeded pods and never more than 2 running at once.
func TestParallelism(t *testing.T) {
	cl := startCluster(t)
	ns := cl.namespace(t, "parallel")
	peak := watchActive(t, cl, ns)
	j := newJob("work", corev1.PodSucceeded, 0, 300*time.Millisecond)
	j.Spec.Completions = ptr.To[int32](3)
	j.Spec.Parallelism = ptr.To[int32](2)
	j = cl.create(t, ns, j)

	got := cl.waitCondition(t, ns, j.Name, batchv1.JobComplete)
	if got.Status.Succeeded != 3 || got.Status.Failed != 0 || got.Status.Active != 0 {
		t.Errorf("status succeeded/failed/active = %d/%d/%d, want 3/0/0", got.Status.Succeeded, got.Status.Failed, got.Status.Active)
	}
	if got.Status.CompletionTime == nil || got.Status.StartTime == nil {
		t.Errorf("startTime %v completionTime %v, want both", got.Status.StartTime, got.Status.CompletionTime)
	}
	if c := condition(got, batchv1.JobSuccessCriteriaMet); c == nil || c.Status != corev1.ConditionTrue {
		t.Errorf("no SuccessCriteriaMet condition before Complete: %+v", got.Status.Conditions)
	}
	if n := len(cl.pods(t, ns, j)); n != 3 {
		t.Errorf("%d pods created, want 3", n)
	}
	if p := peak(); p != 2 {
		t.Errorf("at most %d pods active at once, want exactly 2", p)
	}
}

// watchActive follows the namespace's pods and returns a function that
// reports the most that were active (neither finished nor deleted) at
// once.
func watchActive(t *testing.T, cl *cluster, ns string) func() int {
	ctx, cancel := context.WithCancel(context.Background())
	factory := informers.NewSharedInformerFactoryWithOptions(cl.client, 0, informers.WithNamespace(ns))
	var mu sync.Mutex
	running := map[string]bool{}
	peak := 0
	track := func(obj any) {
		p, ok := obj.(*corev1.Pod)
		if !ok {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if p.DeletionTimestamp == nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed {
			running[p.Name] = true
		} else {
			delete(running, p.Name)
		}
		peak = max(peak, len(running))
	}
	_, _ = factory.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    track,
		UpdateFunc: func(_, obj any) { track(obj) },
		DeleteFunc: func(obj any) {
			if p, ok := obj.(*corev1.Pod); ok {
				mu.Lock()
				delete(running, p.Name)
				mu.Unlock()
			}
		},
	})
	factory.Start(ctx.Done())
	factory.WaitForCacheSync(ctx.Done())
	t.Cleanup(func() { cancel(); factory.Shutdown() })
	return func() int {
		mu.Lock()
		defer mu.Unlock()
		return peak
	}
}

// TestActiveDeadline: a Job running past activeDeadlineSeconds fails with
// DeadlineExceeded and its pods are deleted and counted as failed.
func TestActiveDeadline(t *testing.T) {
	cl := startCluster(t)
	ns := cl.namespace(t, "deadline")
	j := newJob("slow", "", 0, 0) // pods run forever
	j.Spec.Parallelism = ptr.To[int32](2)
	j.Spec.Completions = ptr.To[int32](2)
	j.Spec.ActiveDeadlineSeconds = ptr.To[int64](1)
	j = cl.create(t, ns, j)

	got := cl.waitCondition(t, ns, j.Name, batchv1.JobFailed)
	if c := condition(got, batchv1.JobFailed); c.Reason != batchv1.JobReasonDeadlineExceeded {
		t.Errorf("Failed reason = %q, want %q", c.Reason, batchv1.JobReasonDeadlineExceeded)
	}
	if got.Status.Active != 0 || got.Status.Failed != 2 || ptr.Deref(got.Status.Terminating, -1) != 0 {
		t.Errorf("status active/failed/terminating = %d/%d/%v, want 0/2/0", got.Status.Active, got.Status.Failed, got.Status.Terminating)
	}
	testenv.Eventually(t, "the pods are gone", func(ctx context.Context) (bool, error) {
		return len(cl.pods(t, ns, j)) == 0, nil
	})
}

// TestTTLAfterFinished: a finished Job with ttlSecondsAfterFinished is
// deleted, and its pods with it.
func TestTTLAfterFinished(t *testing.T) {
	cl := startCluster(t)
	cl.startGC(t)
	ns := cl.namespace(t, "ttl")
	j := newJob("short-lived", corev1.PodSucceeded, 0, 0)
	j.Spec.TTLSecondsAfterFinished = ptr.To[int32](1)
	j = cl.create(t, ns, j)

	cl.waitCondition(t, ns, j.Name, batchv1.JobComplete)
	testenv.Eventually(t, "the job is deleted", func(ctx context.Context) (bool, error) {
		_, err := cl.client.BatchV1().Jobs(ns).Get(ctx, j.Name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	testenv.Eventually(t, "its pods are deleted", func(ctx context.Context) (bool, error) {
		return len(cl.pods(t, ns, j)) == 0, nil
	})
}

// TestIndexed: each pod of an Indexed Job gets its index as annotation,
// label, hostname and JOB_COMPLETION_INDEX, and every index completes
// once.
func TestIndexed(t *testing.T) {
	cl := startCluster(t)
	ns := cl.namespace(t, "indexed")
	j := newJob("shards", corev1.PodSucceeded, 0, 100*time.Millisecond)
	j.Spec.Completions = ptr.To[int32](4)
	j.Spec.Parallelism = ptr.To[int32](2)
	j.Spec.CompletionMode = ptr.To(batchv1.IndexedCompletion)
	j = cl.create(t, ns, j)

	got := cl.waitCondition(t, ns, j.Name, batchv1.JobComplete)
	if got.Status.CompletedIndexes != "0-3" || got.Status.Succeeded != 4 {
		t.Errorf("completedIndexes %q succeeded %d, want \"0-3\" and 4", got.Status.CompletedIndexes, got.Status.Succeeded)
	}
	seen := map[string]bool{}
	for _, p := range cl.pods(t, ns, j) {
		ix := p.Annotations[batchv1.JobCompletionIndexAnnotation]
		if _, err := strconv.Atoi(ix); err != nil {
			t.Errorf("pod %s: completion index annotation %q", p.Name, ix)
			continue
		}
		seen[ix] = true
		if p.Labels[batchv1.JobCompletionIndexAnnotation] != ix {
			t.Errorf("pod %s: index label %q, annotation %q", p.Name, p.Labels[batchv1.JobCompletionIndexAnnotation], ix)
		}
		if want := j.Name + "-" + ix; p.Spec.Hostname != want {
			t.Errorf("pod %s: hostname %q, want %q", p.Name, p.Spec.Hostname, want)
		}
		if want := j.Name + "-" + ix + "-"; p.GenerateName != want {
			t.Errorf("pod %s: generateName %q, want %q", p.Name, p.GenerateName, want)
		}
		env := p.Spec.Containers[0].Env
		if !slices.ContainsFunc(env, func(e corev1.EnvVar) bool {
			return e.Name == "JOB_COMPLETION_INDEX" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil &&
				e.ValueFrom.FieldRef.FieldPath == "metadata.annotations['batch.kubernetes.io/job-completion-index']"
		}) {
			t.Errorf("pod %s: no JOB_COMPLETION_INDEX from the annotation in %+v", p.Name, env)
		}
		for _, k := range []string{batchv1.JobNameLabel, "job-name", batchv1.ControllerUidLabel, "controller-uid"} {
			if p.Labels[k] == "" {
				t.Errorf("pod %s: label %s missing", p.Name, k)
			}
		}
	}
	if len(seen) != 4 {
		t.Errorf("indexes seen %v, want 0..3", seen)
	}
}

// TestSuspend: a suspended Job makes no pods and reports Suspended; once
// resumed it runs to completion.
func TestSuspend(t *testing.T) {
	cl := startCluster(t)
	ns := cl.namespace(t, "suspend")
	j := newJob("later", corev1.PodSucceeded, 0, 0)
	j.Spec.Suspend = ptr.To(true)
	j = cl.create(t, ns, j)

	got := cl.waitCondition(t, ns, j.Name, batchv1.JobSuspended)
	if got.Status.StartTime != nil || len(cl.pods(t, ns, j)) != 0 {
		t.Fatalf("suspended job started: startTime %v, %d pods", got.Status.StartTime, len(cl.pods(t, ns, j)))
	}
	got.Spec.Suspend = ptr.To(false)
	if _, err := cl.client.BatchV1().Jobs(ns).Update(t.Context(), got, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	got = cl.waitCondition(t, ns, j.Name, batchv1.JobComplete)
	if c := condition(got, batchv1.JobSuspended); c == nil || c.Status != corev1.ConditionFalse || c.Reason != "JobResumed" {
		t.Errorf("Suspended condition after resume: %+v", c)
	}
}

// TestSuspendRunning: suspending a running Job deletes its pods without
// counting them as failed.
func TestSuspendRunning(t *testing.T) {
	cl := startCluster(t)
	ns := cl.namespace(t, "suspend-running")
	j := newJob("pause", "", 0, 0)
	j.Spec.Parallelism = ptr.To[int32](2)
	j = cl.create(t, ns, j)
	testenv.Eventually(t, "two pods run", func(ctx context.Context) (bool, error) {
		got, err := cl.client.BatchV1().Jobs(ns).Get(ctx, j.Name, metav1.GetOptions{})
		return err == nil && ptr.Deref(got.Status.Ready, 0) == 2, err
	})
	patch := []byte(`{"spec":{"suspend":true}}`)
	if _, err := cl.client.BatchV1().Jobs(ns).Patch(t.Context(), j.Name, "application/merge-patch+json", patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	got := cl.waitCondition(t, ns, j.Name, batchv1.JobSuspended)
	testenv.Eventually(t, "the pods are gone", func(ctx context.Context) (bool, error) {
		return len(cl.pods(t, ns, j)) == 0, nil
	})
	got, err := cl.client.BatchV1().Jobs(ns).Get(t.Context(), j.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got.Status.Failed != 0 || got.Status.Active != 0 {
		t.Errorf("after suspend: failed %d active %d, want 0 and 0", got.Status.Failed, got.Status.Active)
	}
}

// TestPodFailurePolicy: a FailJob rule on an exit code fails the Job at
// the first such pod; an Ignore rule does not count failures.
func TestPodFailurePolicy(t *testing.T) {
	cl := startCluster(t)
	ns := cl.namespace(t, "pfp")
	rules := []batchv1.PodFailurePolicyRule{{
		Action:      batchv1.PodFailurePolicyActionFailJob,
		OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{42}},
	}}
	j := newJob("fatal", corev1.PodFailed, 42, 0)
	j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: rules}
	j = cl.create(t, ns, j)
	got := cl.waitCondition(t, ns, j.Name, batchv1.JobFailed)
	if c := condition(got, batchv1.JobFailed); c.Reason != batchv1.JobReasonPodFailurePolicy {
		t.Errorf("Failed reason = %q, want %q", c.Reason, batchv1.JobReasonPodFailurePolicy)
	}
	if n := len(cl.pods(t, ns, j)); n != 1 || got.Status.Failed != 1 {
		t.Errorf("%d pods, %d failed; want 1 and 1", n, got.Status.Failed)
	}
}

// TestCountsOnceAfterCrash starts the controller on the state a crash
// between the steps of tracking leaves: a pod already in
// uncountedTerminatedPods still holding its finalizer, and one counted
// whose finalizer is gone. Each is counted exactly once.
func TestCountsOnceAfterCrash(t *testing.T) {
	cl := newCluster(t)
	ctx := t.Context()
	ns := cl.namespace(t, "crash")
	j := newJob("recover", corev1.PodSucceeded, 0, 0)
	j.Spec.Completions = ptr.To[int32](3)
	j.Spec.Parallelism = ptr.To[int32](3)
	j = cl.create(t, ns, j)

	// Three pods made by a previous controller, all succeeded: one
	// uncounted with its finalizer, one counted already, one new.
	var uids []string
	for i := range 3 {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{
				Name: fmt.Sprintf("recover-%d", i), Labels: j.Spec.Template.Labels, Annotations: j.Spec.Template.Annotations,
				OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(j, batchv1.SchemeGroupVersion.WithKind("Job"))},
			},
			Spec: j.Spec.Template.Spec,
		}
		if i != 1 {
			p.Finalizers = []string{batchv1.JobTrackingFinalizer}
		}
		p, err := cl.client.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		p.Status.Phase = corev1.PodSucceeded
		if _, err := cl.client.CoreV1().Pods(ns).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		uids = append(uids, string(p.UID))
	}
	now := metav1.Now()
	j.Status = batchv1.JobStatus{StartTime: &now, Succeeded: 1, Active: 0,
		UncountedTerminatedPods: &batchv1.UncountedTerminatedPods{Succeeded: []types.UID{types.UID(uids[0])}}}
	if _, err := cl.client.BatchV1().Jobs(ns).UpdateStatus(ctx, j, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	cl.startKubelet(t)
	cl.startController(t, fast)
	got := cl.waitCondition(t, ns, j.Name, batchv1.JobComplete)
	if got.Status.Succeeded != 3 {
		t.Errorf("succeeded = %d, want 3", got.Status.Succeeded)
	}
	if n := len(cl.pods(t, ns, j)); n != 3 {
		t.Errorf("%d pods, want the 3 there were", n)
	}
}

// TestBackoffDelays drives the clock by hand and plays the kubelet itself,
// so pods fail at known times: a failed pod is replaced only after the
// backoff (10s, then 20s, then 40s: upstream's defaults), and the Job
// fails when backoffLimit is exceeded.
func TestBackoffDelays(t *testing.T) {
	cl := newCluster(t)
	fake := testingclock.NewFakeClock(time.Now().Truncate(time.Second))
	cl.startController(t, job.Options{Clock: fake})
	ns := cl.namespace(t, "delays")
	j := newJob("flaky", "", 0, 0)
	j.Spec.BackoffLimit = ptr.To[int32](3)
	j = cl.create(t, ns, j)

	waitPods := func(n int) []corev1.Pod {
		t.Helper()
		var pods []corev1.Pod
		testenv.Eventually(t, fmt.Sprintf("%d pods", n), func(ctx context.Context) (bool, error) {
			pods = cl.pods(t, ns, j)
			return len(pods) == n, nil
		})
		return pods
	}
	for i, delay := range []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 0} {
		pods := waitPods(i + 1)
		var newest *corev1.Pod
		for k := range pods {
			if pods[k].Status.Phase != corev1.PodFailed {
				newest = &pods[k]
			}
		}
		if newest == nil {
			t.Fatalf("no running pod among %d", len(pods))
		}
		failAt(t, cl, newest, fake.Now())
		if delay == 0 {
			break
		}
		fake.Step(delay - time.Second)
		time.Sleep(300 * time.Millisecond)
		if n := len(cl.pods(t, ns, j)); n != i+1 {
			t.Fatalf("a pod was replaced %v after failure %d, before its %v backoff: %d pods", delay-time.Second, i+1, delay, n)
		}
		fake.Step(time.Second)
	}
	got := cl.waitCondition(t, ns, j.Name, batchv1.JobFailed)
	if c := condition(got, batchv1.JobFailed); c.Reason != batchv1.JobReasonBackoffLimitExceeded || got.Status.Failed != 4 {
		t.Errorf("reason %q failed %d, want BackoffLimitExceeded and 4", c.Reason, got.Status.Failed)
	}
	if n := len(cl.pods(t, ns, j)); n != 4 {
		t.Errorf("%d pods, want 4", n)
	}
}

// failAt marks a pod Failed at the given time, as a kubelet would.
func failAt(t *testing.T, cl *cluster, pod *corev1.Pod, at time.Time) {
	t.Helper()
	p := pod.DeepCopy()
	ts := metav1.NewTime(at)
	p.Status.Phase = corev1.PodFailed
	p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse, LastTransitionTime: ts}}
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "main", State: corev1.ContainerState{
		Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, StartedAt: ts, FinishedAt: ts}}}}
	if _, err := cl.client.CoreV1().Pods(p.Namespace).UpdateStatus(t.Context(), p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestAdoption: a Job with a manual selector adopts a matching orphan pod
// (a succeeded one counts toward completions) and tracks it like its own.
func TestAdoption(t *testing.T) {
	cl := startCluster(t)
	ns := cl.namespace(t, "adopt")
	labels := map[string]string{"app": "adopt"}
	orphan := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "orphan", Labels: labels, Annotations: map[string]string{phaseAnnotation: string(corev1.PodSucceeded)}},
		Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{Name: "main", Image: "busybox"}}},
	}
	if _, err := cl.client.CoreV1().Pods(ns).Create(t.Context(), orphan, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the orphan succeeded", func(ctx context.Context) (bool, error) {
		p, err := cl.client.CoreV1().Pods(ns).Get(ctx, "orphan", metav1.GetOptions{})
		return err == nil && p.Status.Phase == corev1.PodSucceeded, err
	})

	j := newJob("adopter", corev1.PodSucceeded, 0, 0)
	j.Spec.ManualSelector = ptr.To(true)
	j.Spec.Selector = &metav1.LabelSelector{MatchLabels: labels}
	j.Spec.Template.Labels = labels
	j.Spec.Completions = ptr.To[int32](2)
	j = cl.create(t, ns, j)

	got := cl.waitCondition(t, ns, j.Name, batchv1.JobComplete)
	if got.Status.Succeeded != 2 {
		t.Errorf("succeeded = %d, want 2", got.Status.Succeeded)
	}
	p, err := cl.client.CoreV1().Pods(ns).Get(t.Context(), "orphan", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !metav1.IsControlledBy(p, got) || slices.Contains(p.Finalizers, batchv1.JobTrackingFinalizer) {
		t.Errorf("orphan owners %+v finalizers %v: want adopted, finalizer gone", p.OwnerReferences, p.Finalizers)
	}
	list, err := cl.client.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 2 {
		t.Errorf("%d pods, want the orphan and one more", len(list.Items))
	}
}
