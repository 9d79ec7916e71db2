package printers

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestPodCells(t *testing.T) {
	always := corev1.ContainerRestartPolicyAlways
	yes := true
	deleted := ago(time.Second)
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	waiting := func(reason string) corev1.ContainerState {
		return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}
	}
	terminated := func(reason string, code, signal int32) corev1.ContainerState {
		return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: reason, ExitCode: code, Signal: signal}}
	}
	lastDied := func(d time.Duration) corev1.ContainerState {
		return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{FinishedAt: ago(d)}}
	}
	two := []corev1.Container{{Name: "app"}, {Name: "log"}}
	one := []corev1.Container{{Name: "app"}}

	tests := []struct {
		name string
		pod  corev1.Pod
		// want holds Ready, Status, Restarts; the other cells are checked
		// in the "running" case only.
		want []any
	}{
		{
			name: "pending",
			pod:  corev1.Pod{Spec: corev1.PodSpec{Containers: one}, Status: corev1.PodStatus{Phase: corev1.PodPending}},
			want: []any{"0/1", "Pending", "0"},
		},
		{
			name: "running with restarts",
			pod: corev1.Pod{
				Spec: corev1.PodSpec{Containers: two},
				Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{
					{Name: "app", Ready: true, State: running, RestartCount: 3, LastTerminationState: lastDied(5 * time.Minute)},
					{Name: "log", Ready: false, State: running},
				}},
			},
			want: []any{"1/2", "Running", "3 (5m ago)"},
		},
		{
			name: "restarts without a termination time",
			pod: corev1.Pod{
				Spec: corev1.PodSpec{Containers: one},
				Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{
					{Name: "app", Ready: true, State: running, RestartCount: 2},
				}},
			},
			want: []any{"1/1", "Running", "2"},
		},
		{
			name: "init container running",
			pod: corev1.Pod{
				Spec: corev1.PodSpec{InitContainers: []corev1.Container{{Name: "init"}}, Containers: one},
				Status: corev1.PodStatus{Phase: corev1.PodPending,
					InitContainerStatuses: []corev1.ContainerStatus{{Name: "init", State: running}},
					ContainerStatuses:     []corev1.ContainerStatus{{Name: "app", State: waiting("PodInitializing")}},
				},
			},
			want: []any{"0/1", "Init:0/1", "0"},
		},
		{
			name: "second init container",
			pod: corev1.Pod{
				Spec: corev1.PodSpec{InitContainers: []corev1.Container{{Name: "a"}, {Name: "b"}}, Containers: one},
				Status: corev1.PodStatus{Phase: corev1.PodPending, InitContainerStatuses: []corev1.ContainerStatus{
					{Name: "a", State: terminated("Completed", 0, 0)},
					{Name: "b", State: waiting("PodInitializing")},
				}},
			},
			want: []any{"0/1", "Init:1/2", "0"},
		},
		{
			name: "init container crashing",
			pod: corev1.Pod{
				Spec: corev1.PodSpec{InitContainers: []corev1.Container{{Name: "init"}}, Containers: one},
				Status: corev1.PodStatus{Phase: corev1.PodPending, InitContainerStatuses: []corev1.ContainerStatus{
					{Name: "init", State: waiting("CrashLoopBackOff"), RestartCount: 4, LastTerminationState: lastDied(90 * time.Second)},
				}},
			},
			want: []any{"0/1", "Init:CrashLoopBackOff", "4 (90s ago)"},
		},
		{
			name: "init container failed",
			pod: corev1.Pod{
				Spec: corev1.PodSpec{InitContainers: []corev1.Container{{Name: "init"}}, Containers: one},
				Status: corev1.PodStatus{Phase: corev1.PodPending, InitContainerStatuses: []corev1.ContainerStatus{
					{Name: "init", State: terminated("", 2, 0)},
				}},
			},
			want: []any{"0/1", "Init:ExitCode:2", "0"},
		},
		{
			name: "crash loop",
			pod: corev1.Pod{
				Spec: corev1.PodSpec{Containers: one},
				Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{
					{Name: "app", State: waiting("CrashLoopBackOff"), RestartCount: 5, LastTerminationState: lastDied(time.Minute)},
				}},
			},
			want: []any{"0/1", "CrashLoopBackOff", "5 (60s ago)"},
		},
		{
			name: "image pull",
			pod: corev1.Pod{
				Spec: corev1.PodSpec{Containers: one},
				Status: corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{
					{Name: "app", State: waiting("ErrImagePull")},
				}},
			},
			want: []any{"0/1", "ErrImagePull", "0"},
		},
		{
			name: "completed",
			pod: corev1.Pod{
				Spec: corev1.PodSpec{Containers: one},
				Status: corev1.PodStatus{Phase: corev1.PodSucceeded, ContainerStatuses: []corev1.ContainerStatus{
					{Name: "app", State: terminated("Completed", 0, 0)},
				}},
			},
			want: []any{"0/1", "Completed", "0"},
		},
		{
			name: "one container completed, one running and ready",
			pod: corev1.Pod{
				Spec: corev1.PodSpec{Containers: two},
				Status: corev1.PodStatus{Phase: corev1.PodRunning,
					Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}},
					ContainerStatuses: []corev1.ContainerStatus{
						{Name: "app", Ready: true, State: running},
						{Name: "log", State: terminated("Completed", 0, 0)},
					}},
			},
			want: []any{"1/2", "Running", "0"},
		},
		{
			name: "one container completed, pod not ready",
			pod: corev1.Pod{
				Spec: corev1.PodSpec{Containers: two},
				Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{
					{Name: "app", Ready: true, State: running},
					{Name: "log", State: terminated("Completed", 0, 0)},
				}},
			},
			want: []any{"1/2", "NotReady", "0"},
		},
		{
			name: "killed by signal",
			pod: corev1.Pod{
				Spec: corev1.PodSpec{Containers: one},
				Status: corev1.PodStatus{Phase: corev1.PodFailed, ContainerStatuses: []corev1.ContainerStatus{
					{Name: "app", State: terminated("", 137, 9)},
				}},
			},
			want: []any{"0/1", "Signal:9", "0"},
		},
		{
			name: "terminating",
			pod: corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &deleted},
				Spec:       corev1.PodSpec{Containers: one},
				Status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{
					{Name: "app", Ready: true, State: running},
				}},
			},
			want: []any{"1/1", "Terminating", "0"},
		},
		{
			name: "deleted after completing",
			pod: corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &deleted},
				Spec:       corev1.PodSpec{Containers: one},
				Status: corev1.PodStatus{Phase: corev1.PodSucceeded, ContainerStatuses: []corev1.ContainerStatus{
					{Name: "app", State: terminated("Completed", 0, 0)},
				}},
			},
			want: []any{"0/1", "Completed", "0"},
		},
		{
			name: "node lost",
			pod: corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &deleted},
				Spec:       corev1.PodSpec{Containers: one},
				Status:     corev1.PodStatus{Phase: corev1.PodRunning, Reason: "NodeLost"},
			},
			want: []any{"0/1", "Unknown", "0"},
		},
		{
			name: "evicted",
			pod: corev1.Pod{
				Spec:   corev1.PodSpec{Containers: one},
				Status: corev1.PodStatus{Phase: corev1.PodFailed, Reason: "Evicted"},
			},
			want: []any{"0/1", "Evicted", "0"},
		},
		{
			name: "scheduling gated",
			pod: corev1.Pod{
				Spec: corev1.PodSpec{Containers: one},
				Status: corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{
					{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "SchedulingGated"},
				}},
			},
			want: []any{"0/1", "SchedulingGated", "0"},
		},
		{
			name: "sidecar counts as a container",
			pod: corev1.Pod{
				Spec: corev1.PodSpec{
					InitContainers: []corev1.Container{{Name: "proxy", RestartPolicy: &always}},
					Containers:     one,
				},
				Status: corev1.PodStatus{Phase: corev1.PodRunning,
					Conditions: []corev1.PodCondition{{Type: corev1.PodInitialized, Status: corev1.ConditionTrue}},
					InitContainerStatuses: []corev1.ContainerStatus{
						{Name: "proxy", Ready: true, Started: &yes, State: running, RestartCount: 1, LastTerminationState: lastDied(3 * time.Minute)},
					},
					ContainerStatuses: []corev1.ContainerStatus{{Name: "app", Ready: true, State: running}},
				},
			},
			want: []any{"2/2", "Running", "1 (3m ago)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.pod.Name = "web"
			tt.pod.CreationTimestamp = created
			got := cells(t, gk("", "Pod"), &tt.pod)
			checkRow(t, got[1:4], tt.want)
			if got[0] != "web" || got[4] != "5m" {
				t.Errorf("name and age: %v, %v", got[0], got[4])
			}
		})
	}
}

func TestPodWideCells(t *testing.T) {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", CreationTimestamp: created},
		Spec: corev1.PodSpec{
			NodeName:       "node-1",
			Containers:     []corev1.Container{{Name: "app"}},
			ReadinessGates: []corev1.PodReadinessGate{{ConditionType: "example.com/lb"}, {ConditionType: "example.com/dns"}},
		},
		Status: corev1.PodStatus{
			Phase:             corev1.PodRunning,
			PodIP:             "10.0.0.5",
			PodIPs:            []corev1.PodIP{{IP: "10.0.0.5"}, {IP: "fd00::5"}},
			NominatedNodeName: "node-2",
			Conditions: []corev1.PodCondition{
				{Type: "example.com/lb", Status: corev1.ConditionTrue},
				{Type: "example.com/dns", Status: corev1.ConditionFalse},
			},
			ContainerStatuses: []corev1.ContainerStatus{{Name: "app", Ready: true, State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}},
		},
	}
	checkRow(t, cells(t, gk("", "Pod"), pod),
		[]any{"web", "1/1", "Running", "0", "5m", "10.0.0.5", "node-1", "node-2", "1/2"})

	checkRow(t, cells(t, gk("", "Pod"), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "new"}}),
		[]any{"new", "0/0", "", "0", "<unknown>", "<none>", "<none>", "<none>", "<none>"})
}
