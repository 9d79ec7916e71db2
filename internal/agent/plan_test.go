package agent

import (
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

// fakeProbes is a probeView with scripted verdicts by container ID.
type fakeProbes struct {
	failedIDs  map[string]bool
	notStarted map[string]bool
	unready    map[string]bool
}

func (f fakeProbes) failed(id string) string {
	if f.failedIDs[id] {
		return "failed liveness probe, will be restarted"
	}
	return ""
}
func (f fakeProbes) started(c *corev1.Container, id string) bool { return !f.notStarted[id] }
func (f fakeProbes) ready(c *corev1.Container, id string) bool   { return !f.unready[id] }

func running(name string, attempt int) ContainerStatus {
	return ContainerStatus{ID: name + "-" + string(rune('0'+attempt)), Name: name, Attempt: attempt, State: StateRunning, StartedAt: time.Unix(100, 0)}
}

func exited(name string, attempt, code int) ContainerStatus {
	return ContainerStatus{ID: name + "-" + string(rune('0'+attempt)), Name: name, Attempt: attempt, State: StateExited, ExitCode: code,
		StartedAt: time.Unix(100, 0), FinishedAt: time.Unix(200, 0)}
}

func testPod(policy corev1.RestartPolicy, init []string, sidecars []string, app ...string) *corev1.Pod {
	pod := envPod()
	pod.Spec.RestartPolicy = policy
	always := corev1.ContainerRestartPolicyAlways
	for _, n := range init {
		c := corev1.Container{Name: n}
		for _, s := range sidecars {
			if s == n {
				c.RestartPolicy = &always
			}
		}
		pod.Spec.InitContainers = append(pod.Spec.InitContainers, c)
	}
	for _, n := range app {
		pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: n})
	}
	return pod
}

// planSummary renders a plan as "start:a@1 kill:b wait:c terminal".
func planSummary(p plan) string {
	var parts []string
	for _, s := range p.start {
		parts = append(parts, "start:"+s.c.Name+"@"+string(rune('0'+s.attempt)))
	}
	for _, k := range p.kill {
		parts = append(parts, "kill:"+k.rec.Name)
	}
	var waits []string
	for n := range p.wait {
		waits = append(waits, "wait:"+n)
	}
	sort.Strings(waits)
	parts = append(parts, waits...)
	if p.terminal {
		parts = append(parts, "terminal")
	}
	return strings.Join(parts, " ")
}

func TestPlanPod(t *testing.T) {
	const (
		always    = corev1.RestartPolicyAlways
		onFailure = corev1.RestartPolicyOnFailure
		never     = corev1.RestartPolicyNever
	)
	cases := []struct {
		name    string
		pod     *corev1.Pod
		records []ContainerStatus
		probes  fakeProbes
		backOff map[string]bool // containers in back-off
		want    string
	}{
		{"new pod starts all app containers", testPod(always, nil, nil, "a", "b"), nil, fakeProbes{}, nil, "start:a@0 start:b@0"},
		{"running pod: nothing", testPod(always, nil, nil, "a"), []ContainerStatus{running("a", 0)}, fakeProbes{}, nil, ""},
		{"first init container first", testPod(always, []string{"i1", "i2"}, nil, "a"), nil, fakeProbes{}, nil, "start:i1@0"},
		{"init running: wait", testPod(always, []string{"i1", "i2"}, nil, "a"), []ContainerStatus{running("i1", 0)}, fakeProbes{}, nil, ""},
		{"init done: next one", testPod(always, []string{"i1", "i2"}, nil, "a"), []ContainerStatus{exited("i1", 0, 0)}, fakeProbes{}, nil, "start:i2@0"},
		{"inits done: app containers", testPod(always, []string{"i1", "i2"}, nil, "a"), []ContainerStatus{exited("i1", 0, 0), exited("i2", 0, 0)}, fakeProbes{}, nil, "start:a@0"},
		{"failed init restarts", testPod(onFailure, []string{"i1"}, nil, "a"), []ContainerStatus{exited("i1", 0, 1)}, fakeProbes{}, nil, "start:i1@1"},
		{"failed init in back-off", testPod(always, []string{"i1"}, nil, "a"), []ContainerStatus{exited("i1", 2, 1)}, fakeProbes{}, map[string]bool{"i1": true}, "wait:i1"},
		{"failed init fails a Never pod", testPod(never, []string{"i1"}, nil, "a"), []ContainerStatus{exited("i1", 0, 1)}, fakeProbes{}, nil, "terminal"},
		{"initialized pods never rerun inits", testPod(always, []string{"i1"}, nil, "a"), []ContainerStatus{exited("a", 0, 1)}, fakeProbes{}, nil, "start:a@1"},
		{"sidecar starts first", testPod(always, []string{"side", "i1"}, []string{"side"}, "a"), nil, fakeProbes{}, nil, "start:side@0"},
		{"started sidecar lets the next init go", testPod(always, []string{"side", "i1"}, []string{"side"}, "a"), []ContainerStatus{running("side", 0)}, fakeProbes{}, nil, "start:i1@0"},
		{"sidecar not started yet: wait", testPod(always, []string{"side", "i1"}, []string{"side"}, "a"), []ContainerStatus{running("side", 0)},
			fakeProbes{notStarted: map[string]bool{"side-0": true}}, nil, ""},
		{"sidecar keeps running beside apps", testPod(always, []string{"side", "i1"}, []string{"side"}, "a"),
			[]ContainerStatus{running("side", 0), exited("i1", 0, 0), running("a", 0)}, fakeProbes{}, nil, ""},
		{"exited sidecar restarts even after init", testPod(never, []string{"side"}, []string{"side"}, "a"),
			[]ContainerStatus{exited("side", 0, 0), running("a", 0)}, fakeProbes{}, nil, "start:side@1"},
		{"Always restarts a completed container", testPod(always, nil, nil, "a"), []ContainerStatus{exited("a", 0, 0)}, fakeProbes{}, nil, "start:a@1"},
		{"OnFailure restarts a failed container", testPod(onFailure, nil, nil, "a", "b"), []ContainerStatus{exited("a", 3, 2), running("b", 0)}, fakeProbes{}, nil, "start:a@4"},
		{"OnFailure leaves a completed one", testPod(onFailure, nil, nil, "a", "b"), []ContainerStatus{exited("a", 0, 0), running("b", 0)}, fakeProbes{}, nil, ""},
		{"OnFailure pod done", testPod(onFailure, nil, nil, "a", "b"), []ContainerStatus{exited("a", 0, 0), exited("b", 1, 0)}, fakeProbes{}, nil, "terminal"},
		{"Never pod done with a failure", testPod(never, nil, nil, "a"), []ContainerStatus{exited("a", 0, 1)}, fakeProbes{}, nil, "terminal"},
		{"done pod stops its sidecar", testPod(never, []string{"side"}, []string{"side"}, "a"), []ContainerStatus{running("side", 0), exited("a", 0, 0)}, fakeProbes{}, nil, "kill:side terminal"},
		{"liveness failure kills", testPod(always, nil, nil, "a", "b"), []ContainerStatus{running("a", 0), running("b", 0)},
			fakeProbes{failedIDs: map[string]bool{"a-0": true}}, nil, "kill:a"},
		{"liveness failure of a sidecar kills it", testPod(always, []string{"side"}, []string{"side"}, "a"), []ContainerStatus{running("side", 0), running("a", 0)},
			fakeProbes{failedIDs: map[string]bool{"side-0": true}}, nil, "kill:side"},
		{"crash loop waits", testPod(always, nil, nil, "a", "b"), []ContainerStatus{exited("a", 5, 1), exited("b", 0, 1)}, fakeProbes{}, map[string]bool{"a": true}, "start:b@1 wait:a"},
		{"attempt follows the newest", testPod(always, nil, nil, "a"), []ContainerStatus{exited("a", 6, 1), exited("a", 7, 1)}, fakeProbes{}, nil, "start:a@8"},
		{"created but never started is replaced", testPod(never, nil, nil, "a"), []ContainerStatus{{ID: "x", Name: "a", State: StateCreated}}, fakeProbes{}, nil, "start:a@1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := planPod(c.pod, groupContainers(c.records), c.probes, func(ct *corev1.Container, prev *ContainerStatus) time.Duration {
				if c.backOff[ct.Name] {
					return 10 * time.Second
				}
				return 0
			})
			if got := planSummary(p); got != c.want {
				t.Errorf("plan = %q, want %q", got, c.want)
			}
		})
	}
}

func TestPlanStartKeepsPrevious(t *testing.T) {
	pod := testPod(always, nil, nil, "a")
	p := planPod(pod, groupContainers([]ContainerStatus{exited("a", 1, 2)}), fakeProbes{}, func(*corev1.Container, *ContainerStatus) time.Duration { return 0 })
	if len(p.start) != 1 || p.start[0].prev == nil || p.start[0].prev.Attempt != 1 {
		t.Fatalf("start %+v: want attempt 2 replacing attempt 1", p.start)
	}
	if diff := cmp.Diff(2, p.start[0].attempt); diff != "" {
		t.Error(diff)
	}
}

const always = corev1.RestartPolicyAlways
