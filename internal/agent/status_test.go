package agent

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// conditionSummary renders the kubelet-owned conditions, e.g.
// "Initialized=True Ready=False(ContainersNotReady)".
func conditionSummary(s corev1.PodStatus) string {
	var parts []string
	for _, c := range s.Conditions {
		p := string(c.Type) + "=" + string(c.Status)
		if c.Reason != "" {
			p += "(" + c.Reason + ")"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, " ")
}

// stateSummary renders the container states, e.g. "a:running b:waiting(CrashLoopBackOff)/terminated(Error)".
func stateSummary(list []corev1.ContainerStatus) string {
	var parts []string
	for _, s := range list {
		p := s.Name + ":" + stateString(s.State)
		if s.LastTerminationState.Terminated != nil {
			p += "/" + stateString(s.LastTerminationState)
		}
		if s.Ready {
			p += "+ready"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, " ")
}

func stateString(st corev1.ContainerState) string {
	switch {
	case st.Running != nil:
		return "running"
	case st.Terminated != nil:
		return "terminated(" + st.Terminated.Reason + ")"
	case st.Waiting != nil:
		return "waiting(" + st.Waiting.Reason + ")"
	}
	return "?"
}

func TestBuildStatus(t *testing.T) {
	const (
		onFailure = corev1.RestartPolicyOnFailure
		never     = corev1.RestartPolicyNever
	)
	sandbox := &Sandbox{IP: "10.244.0.7", Ready: true}
	oom := exited("a", 0, 137)
	oom.Reason = "OOMKilled"
	cases := []struct {
		name     string
		pod      *corev1.Pod
		records  []ContainerStatus
		reasons  map[string]waitingReason
		probes   fakeProbes
		sandbox  *Sandbox
		terminal bool
		phase    corev1.PodPhase
		conds    string
		init     string
		states   string
	}{
		{
			name: "nothing yet", pod: testPod(always, nil, nil, "a"), sandbox: nil,
			phase:  corev1.PodPending,
			conds:  "PodReadyToStartContainers=False Initialized=True Ready=False(ContainersNotReady) ContainersReady=False(ContainersNotReady) PodScheduled=True",
			states: "a:waiting(ContainerCreating)",
		},
		{
			name: "running and ready", pod: testPod(always, nil, nil, "a", "b"), records: []ContainerStatus{running("a", 0), running("b", 0)}, sandbox: sandbox,
			phase:  corev1.PodRunning,
			conds:  "PodReadyToStartContainers=True Initialized=True Ready=True ContainersReady=True PodScheduled=True",
			states: "a:running+ready b:running+ready",
		},
		{
			name: "readiness failing", pod: testPod(always, nil, nil, "a"), records: []ContainerStatus{running("a", 0)}, sandbox: sandbox,
			probes: fakeProbes{unready: map[string]bool{"a-0": true}},
			phase:  corev1.PodRunning,
			conds:  "PodReadyToStartContainers=True Initialized=True Ready=False(ContainersNotReady) ContainersReady=False(ContainersNotReady) PodScheduled=True",
			states: "a:running",
		},
		{
			name: "init container running", pod: testPod(always, []string{"i1"}, nil, "a"), records: []ContainerStatus{running("i1", 0)}, sandbox: sandbox,
			phase: corev1.PodPending,
			conds: "PodReadyToStartContainers=True Initialized=False(ContainersNotInitialized) Ready=False(ContainersNotReady) ContainersReady=False(ContainersNotReady) PodScheduled=True",
			init:  "i1:running", states: "a:waiting(PodInitializing)",
		},
		{
			name: "init done, app running", pod: testPod(always, []string{"i1"}, nil, "a"), records: []ContainerStatus{exited("i1", 0, 0), running("a", 0)}, sandbox: sandbox,
			phase: corev1.PodRunning,
			conds: "PodReadyToStartContainers=True Initialized=True Ready=True ContainersReady=True PodScheduled=True",
			init:  "i1:terminated(Completed)+ready", states: "a:running+ready",
		},
		{
			name: "failed init, Never", pod: testPod(never, []string{"i1"}, nil, "a"), records: []ContainerStatus{exited("i1", 0, 1)}, sandbox: sandbox, terminal: true,
			phase: corev1.PodFailed,
			conds: "PodReadyToStartContainers=False Initialized=False(ContainersNotInitialized) Ready=False(PodFailed) ContainersReady=False(PodFailed) PodScheduled=True",
			init:  "i1:terminated(Error)", states: "a:waiting(PodInitializing)",
		},
		{
			name: "crash loop, Always", pod: testPod(always, nil, nil, "a"), records: []ContainerStatus{exited("a", 0, 1), exited("a", 1, 1)}, sandbox: sandbox,
			reasons: map[string]waitingReason{"a": {Reason: "CrashLoopBackOff", Message: "back-off 10s"}},
			phase:   corev1.PodRunning,
			conds:   "PodReadyToStartContainers=True Initialized=True Ready=False(ContainersNotReady) ContainersReady=False(ContainersNotReady) PodScheduled=True",
			states:  "a:waiting(CrashLoopBackOff)/terminated(Error)",
		},
		{
			name: "completed, Always, restarting", pod: testPod(always, nil, nil, "a"), records: []ContainerStatus{exited("a", 0, 0)}, sandbox: sandbox,
			phase:  corev1.PodRunning,
			conds:  "PodReadyToStartContainers=True Initialized=True Ready=False(ContainersNotReady) ContainersReady=False(ContainersNotReady) PodScheduled=True",
			states: "a:terminated(Completed)",
		},
		{
			name: "OnFailure, one failed and restarting", pod: testPod(onFailure, nil, nil, "a", "b"), records: []ContainerStatus{exited("a", 0, 2), exited("b", 0, 0)}, sandbox: sandbox,
			phase:  corev1.PodRunning,
			conds:  "PodReadyToStartContainers=True Initialized=True Ready=False(ContainersNotReady) ContainersReady=False(ContainersNotReady) PodScheduled=True",
			states: "a:terminated(Error) b:terminated(Completed)",
		},
		{
			name: "OnFailure, all completed", pod: testPod(onFailure, nil, nil, "a", "b"), records: []ContainerStatus{exited("a", 1, 0), exited("b", 0, 0)}, sandbox: sandbox, terminal: true,
			phase:  corev1.PodSucceeded,
			conds:  "PodReadyToStartContainers=False Initialized=True(PodCompleted) Ready=False(PodCompleted) ContainersReady=False(PodCompleted) PodScheduled=True",
			states: "a:terminated(Completed) b:terminated(Completed)",
		},
		{
			name: "Never, one failed", pod: testPod(never, nil, nil, "a", "b"), records: []ContainerStatus{exited("a", 0, 3), exited("b", 0, 0)}, sandbox: sandbox, terminal: true,
			phase:  corev1.PodFailed,
			conds:  "PodReadyToStartContainers=False Initialized=True Ready=False(PodFailed) ContainersReady=False(PodFailed) PodScheduled=True",
			states: "a:terminated(Error) b:terminated(Completed)",
		},
		{
			name: "Never, OOM killed", pod: testPod(never, nil, nil, "a"), records: []ContainerStatus{oom}, sandbox: sandbox, terminal: true,
			phase:  corev1.PodFailed,
			conds:  "PodReadyToStartContainers=False Initialized=True Ready=False(PodFailed) ContainersReady=False(PodFailed) PodScheduled=True",
			states: "a:terminated(OOMKilled)",
		},
		{
			name: "image pull failing", pod: testPod(always, nil, nil, "a"), sandbox: sandbox,
			reasons: map[string]waitingReason{"a": {Reason: "ImagePullBackOff", Message: `Back-off pulling image "nope"`}},
			phase:   corev1.PodPending,
			conds:   "PodReadyToStartContainers=True Initialized=True Ready=False(ContainersNotReady) ContainersReady=False(ContainersNotReady) PodScheduled=True",
			states:  "a:waiting(ImagePullBackOff)",
		},
		{
			name: "sidecar running, app running", pod: testPod(always, []string{"side"}, []string{"side"}, "a"), records: []ContainerStatus{running("side", 0), running("a", 0)}, sandbox: sandbox,
			phase: corev1.PodRunning,
			conds: "PodReadyToStartContainers=True Initialized=True Ready=True ContainersReady=True PodScheduled=True",
			init:  "side:running+ready", states: "a:running+ready",
		},
		{
			name: "sidecar not started", pod: testPod(always, []string{"side"}, []string{"side"}, "a"), records: []ContainerStatus{running("side", 0)}, sandbox: sandbox,
			probes: fakeProbes{notStarted: map[string]bool{"side-0": true}},
			phase:  corev1.PodPending,
			conds:  "PodReadyToStartContainers=True Initialized=False(ContainersNotInitialized) Ready=False(ContainersNotReady) ContainersReady=False(ContainersNotReady) PodScheduled=True",
			init:   "side:running", states: "a:waiting(PodInitializing)",
		},
		{
			name: "Never pod done, sidecar killed", pod: testPod(never, []string{"side"}, []string{"side"}, "a"), records: []ContainerStatus{exited("side", 0, 143), exited("a", 0, 0)}, sandbox: sandbox, terminal: true,
			phase: corev1.PodSucceeded,
			conds: "PodReadyToStartContainers=False Initialized=True(PodCompleted) Ready=False(PodCompleted) ContainersReady=False(PodCompleted) PodScheduled=True",
			init:  "side:terminated(Error)", states: "a:terminated(Completed)",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := statusInput{
				pod: c.pod, containers: groupContainers(c.records), reasons: c.reasons, probes: c.probes, ready: c.probes.ready,
				sandbox: c.sandbox, hostIP: "192.168.1.2", terminal: c.terminal, now: metav1.NewTime(time.Unix(1000, 0)),
			}
			st := buildStatus(in)
			if st.Phase != c.phase {
				t.Errorf("phase %s, want %s", st.Phase, c.phase)
			}
			if got := conditionSummary(st); got != c.conds {
				t.Errorf("conditions\n got %s\nwant %s", got, c.conds)
			}
			if got := stateSummary(st.InitContainerStatuses); got != c.init {
				t.Errorf("init containers %q, want %q", got, c.init)
			}
			if got := stateSummary(st.ContainerStatuses); got != c.states {
				t.Errorf("containers %q, want %q", got, c.states)
			}
			if st.HostIP != "192.168.1.2" || st.StartTime == nil || st.QOSClass != corev1.PodQOSBestEffort {
				t.Errorf("hostIP %q startTime %v qos %q", st.HostIP, st.StartTime, st.QOSClass)
			}
			if c.sandbox != nil && (st.PodIP != "10.244.0.7" || len(st.PodIPs) != 1) {
				t.Errorf("podIP %q %v", st.PodIP, st.PodIPs)
			}
		})
	}
}

// TestBuildStatusKeeps checks what carries over from the pod's status:
// terminal phases, others' conditions, transition times, restart counts.
func TestBuildStatusKeeps(t *testing.T) {
	pod := testPod(always, nil, nil, "a")
	then := metav1.NewTime(time.Unix(500, 0))
	pod.Status = corev1.PodStatus{
		Phase:    corev1.PodRunning,
		QOSClass: corev1.PodQOSBurstable,
		Conditions: []corev1.PodCondition{
			{Type: "example.com/gate", Status: corev1.ConditionTrue},
			{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: then},
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: then},
		},
	}
	pod.Spec.ReadinessGates = []corev1.PodReadinessGate{{ConditionType: "example.com/gate"}}
	in := statusInput{pod: pod, containers: groupContainers([]ContainerStatus{running("a", 3)}), probes: fakeProbes{}, ready: fakeProbes{}.ready,
		sandbox: &Sandbox{IP: "10.0.0.1"}, now: metav1.NewTime(time.Unix(1000, 0))}
	st := buildStatus(in)
	if st.QOSClass != corev1.PodQOSBurstable {
		t.Errorf("qosClass %s was not kept", st.QOSClass)
	}
	for _, c := range st.Conditions {
		switch c.Type {
		case "example.com/gate":
		case corev1.PodReady, corev1.PodScheduled:
			if c.Status != corev1.ConditionTrue || !c.LastTransitionTime.Equal(&then) {
				t.Errorf("%s: %s since %v, want True since %v", c.Type, c.Status, c.LastTransitionTime, then)
			}
		}
	}
	if len(st.Conditions) != 6 || st.ContainerStatuses[0].RestartCount != 3 || st.ContainerStatuses[0].ContainerID != "skiff://a-3" {
		t.Errorf("status %+v", st)
	}
	// A gate that is false keeps the pod unready.
	pod.Status.Conditions[0].Status = corev1.ConditionFalse
	st = buildStatus(in)
	for _, c := range st.Conditions {
		if c.Type == corev1.PodReady && (c.Status != corev1.ConditionFalse || c.Reason != "ReadinessGatesNotReady") {
			t.Errorf("Ready %s %s with a false gate", c.Status, c.Reason)
		}
	}
	// A terminal phase is final.
	pod.Status.Phase = corev1.PodSucceeded
	if st := buildStatus(in); st.Phase != corev1.PodSucceeded {
		t.Errorf("phase went from Succeeded to %s", st.Phase)
	}
}
