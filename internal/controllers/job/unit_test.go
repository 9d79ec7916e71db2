package job

import (
	"slices"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	testingclock "k8s.io/utils/clock/testing"
	"k8s.io/utils/ptr"
)

func TestIndexSet(t *testing.T) {
	cases := []struct {
		name        string
		in          string
		completions int
		add         []int
		want        string
		total       int
	}{
		{name: "empty", in: "", completions: 5, want: "", total: 0},
		{name: "single", in: "3", completions: 5, want: "3", total: 1},
		{name: "ranges", in: "0-2,4,7-8", completions: 10, want: "0-2,4,7-8", total: 6},
		{name: "merge adjacent", in: "0-2,4", completions: 10, add: []int{3}, want: "0-4", total: 5},
		{name: "add unsorted duplicates", in: "5", completions: 10, add: []int{9, 1, 5, 2}, want: "1-2,5,9", total: 4},
		{name: "cut at completions", in: "0-9", completions: 4, want: "0-3", total: 4},
		{name: "malformed parts skipped", in: "a,2,5-3,7", completions: 10, want: "2,7", total: 2},
		{name: "overlapping input", in: "1-4,3-6", completions: 10, want: "1-6", total: 6},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := parseIndexes(tc.in, tc.completions).with(tc.add)
			if got := s.String(); got != tc.want {
				t.Errorf("String() = %q, want %q", got, tc.want)
			}
			if got := s.total(); got != tc.total {
				t.Errorf("total() = %d, want %d", got, tc.total)
			}
			for i := range tc.completions {
				want := false
				for _, iv := range parseIndexes(tc.want, tc.completions) {
					want = want || iv.first <= i && i <= iv.last
				}
				if s.has(i) != want {
					t.Errorf("has(%d) = %v, want %v", i, s.has(i), want)
				}
			}
		})
	}
}

func TestFirstPending(t *testing.T) {
	done := parseIndexes("0,2-3", 8)
	got := firstPending(done, map[int]bool{1: true, 5: true}, 3, 8)
	if want := []int{4, 6, 7}; !slices.Equal(got, want) {
		t.Errorf("firstPending = %v, want %v", got, want)
	}
}

func TestBackoffRemaining(t *testing.T) {
	now := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	clk := testingclock.NewFakePassiveClock(now)
	cases := []struct {
		name     string
		failures int
		ago      time.Duration
		want     time.Duration
	}{
		{name: "no failures", failures: 0, want: 0},
		{name: "first failure just now", failures: 1, want: 10 * time.Second},
		{name: "first failure 4s ago", failures: 1, ago: 4 * time.Second, want: 6 * time.Second},
		{name: "third failure doubles twice", failures: 3, want: 40 * time.Second},
		{name: "capped", failures: 10, want: 6 * time.Minute},
		{name: "long past", failures: 3, ago: time.Hour, want: 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := backoffRecord{failures: tc.failures, lastFailure: now.Add(-tc.ago)}
			if got := r.remaining(clk, DefaultBackoffBase, DefaultBackoffMax); got != tc.want {
				t.Errorf("remaining = %v, want %v", got, tc.want)
			}
		})
	}
}

func finishedPod(phase corev1.PodPhase, at time.Time) *corev1.Pod {
	return &corev1.Pod{Status: corev1.PodStatus{Phase: phase, ContainerStatuses: []corev1.ContainerStatus{{
		State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{FinishedAt: metav1.NewTime(at)}}}}}}
}

func TestBackoffNext(t *testing.T) {
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	s := newBackoffStore()
	r := s.next("j", nil, []*corev1.Pod{finishedPod(corev1.PodFailed, t0), finishedPod(corev1.PodFailed, t0.Add(time.Second))})
	if r.failures != 2 || !r.lastFailure.Equal(t0.Add(time.Second)) {
		t.Fatalf("after two failures: %+v", r)
	}
	s.store("j", r)
	// A success resets the count; only failures after it count.
	r = s.next("j", []*corev1.Pod{finishedPod(corev1.PodSucceeded, t0.Add(2*time.Second))},
		[]*corev1.Pod{finishedPod(corev1.PodFailed, t0.Add(time.Second)), finishedPod(corev1.PodFailed, t0.Add(3*time.Second))})
	if r.failures != 1 || !r.lastFailure.Equal(t0.Add(3*time.Second)) {
		t.Fatalf("after a success and a later failure: %+v", r)
	}
}

func TestFailurePolicy(t *testing.T) {
	failed := func(code int32, conds ...corev1.PodConditionType) *corev1.Pod {
		p := &corev1.Pod{Status: corev1.PodStatus{Phase: corev1.PodFailed, ContainerStatuses: []corev1.ContainerStatus{{
			Name: "main", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code}}}}}}
		for _, c := range conds {
			p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: c, Status: corev1.ConditionTrue})
		}
		return p
	}
	policy := &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
		{Action: batchv1.PodFailurePolicyActionIgnore, OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget}}},
		{Action: batchv1.PodFailurePolicyActionFailJob, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
			ContainerName: ptr.To("main"), Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{42}}},
		{Action: batchv1.PodFailurePolicyActionCount, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
			Operator: batchv1.PodFailurePolicyOnExitCodesOpNotIn, Values: []int32{1}}},
	}}
	cases := []struct {
		name      string
		pod       *corev1.Pod
		policy    *batchv1.PodFailurePolicy
		failJob   bool
		wantCount bool
	}{
		{name: "no policy counts", pod: failed(42), wantCount: true},
		{name: "disruption ignored", pod: failed(42, corev1.DisruptionTarget), policy: policy},
		{name: "exit 42 fails the job", pod: failed(42), policy: policy, failJob: true, wantCount: true},
		{name: "exit 3 counts", pod: failed(3), policy: policy, wantCount: true},
		{name: "exit 1 matches nothing and counts", pod: failed(1), policy: policy, wantCount: true},
		{name: "exit 0 never matches exit codes", pod: failed(0), policy: policy, wantCount: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			job := &batchv1.Job{Spec: batchv1.JobSpec{PodFailurePolicy: tc.policy}}
			v := matchFailurePolicy(job, tc.pod)
			if (v.failJob != "") != tc.failJob || v.count != tc.wantCount {
				t.Errorf("verdict %+v, want failJob %v count %v", v, tc.failJob, tc.wantCount)
			}
		})
	}
}

func TestCountReleased(t *testing.T) {
	st := batchv1.JobStatus{Succeeded: 2, Failed: 1, UncountedTerminatedPods: &batchv1.UncountedTerminatedPods{
		Succeeded: []types.UID{"a", "b"}, Failed: []types.UID{"c"}}}
	if !countReleased(&st, map[types.UID]bool{"b": true}) {
		t.Fatal("no change reported")
	}
	if st.Succeeded != 3 || st.Failed != 2 || !slices.Equal(st.UncountedTerminatedPods.Succeeded, []types.UID{"b"}) ||
		len(st.UncountedTerminatedPods.Failed) != 0 {
		t.Errorf("status %+v %+v", st, st.UncountedTerminatedPods)
	}
	if countReleased(&st, map[types.UID]bool{"b": true}) {
		t.Error("a second call changed the status again")
	}
}

func TestNewPodIndexed(t *testing.T) {
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "j", Namespace: "ns", UID: "u"},
		Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"a": "b"}},
			Spec: corev1.PodSpec{
				InitContainers: []corev1.Container{{Name: "init"}},
				Containers:     []corev1.Container{{Name: "c", Env: []corev1.EnvVar{{Name: "JOB_COMPLETION_INDEX", Value: "mine"}}}},
			},
		}},
	}
	p := newPod(job, 7)
	if p.GenerateName != "j-7-" || p.Spec.Hostname != "j-7" || p.Annotations[batchv1.JobCompletionIndexAnnotation] != "7" ||
		p.Labels[batchv1.JobCompletionIndexAnnotation] != "7" || p.Labels["a"] != "b" {
		t.Errorf("pod meta %+v hostname %q", p.ObjectMeta, p.Spec.Hostname)
	}
	if !slices.Contains(p.Finalizers, batchv1.JobTrackingFinalizer) || !metav1.IsControlledBy(p, job) {
		t.Errorf("finalizers %v owners %+v", p.Finalizers, p.OwnerReferences)
	}
	if env := p.Spec.InitContainers[0].Env; len(env) != 1 || env[0].ValueFrom == nil {
		t.Errorf("init container env %+v", env)
	}
	if env := p.Spec.Containers[0].Env; len(env) != 1 || env[0].Value != "mine" {
		t.Errorf("a container's own JOB_COMPLETION_INDEX was replaced: %+v", env)
	}
	if job.Spec.Template.Labels[batchv1.JobCompletionIndexAnnotation] != "" {
		t.Error("newPod changed the Job's template")
	}
}
