package agent_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"skiff.dev/skiff/internal/agent"
	"skiff.dev/skiff/internal/agent/agenttest"
	"skiff.dev/skiff/internal/agent/podruntime"
	"skiff.dev/skiff/internal/version"
)

func TestNodeRegistrationAndLease(t *testing.T) {
	env := newEnv(t)
	startNode(t, env, func(o *agent.Options) {
		o.ServerPort = 12345
		o.MaxPods = 42
		o.PodCIDR = "10.244.0.0/24"
		o.NodeLabels = map[string]string{"example.com/zone": "a"}
	})
	ctx := t.Context()
	n, err := env.Client.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	st := n.Status
	if st.Capacity.Cpu().Value() < 1 || st.Capacity.Memory().Value() < 1<<20 || st.Capacity.Pods().Value() != 42 {
		t.Errorf("capacity %v", st.Capacity)
	}
	if _, ok := st.Capacity[corev1.ResourceEphemeralStorage]; !ok {
		t.Errorf("no ephemeral-storage in %v", st.Capacity)
	}
	if st.Allocatable.Pods().Value() != 42 {
		t.Errorf("allocatable %v", st.Allocatable)
	}
	if st.DaemonEndpoints.KubeletEndpoint.Port != 12345 {
		t.Errorf("kubelet port %d", st.DaemonEndpoints.KubeletEndpoint.Port)
	}
	wantAddr := []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.0.2.10"}, {Type: corev1.NodeHostName, Address: nodeName}}
	if !slices.Equal(st.Addresses, wantAddr) {
		t.Errorf("addresses %v", st.Addresses)
	}
	info := st.NodeInfo
	if info.KubeletVersion != version.Kubernetes || info.ContainerRuntimeVersion != "skiff://"+version.Version ||
		info.KernelVersion == "" || info.OSImage == "" || info.Architecture == "" || info.OperatingSystem != "linux" {
		t.Errorf("node info %+v", info)
	}
	if n.Spec.PodCIDR != "10.244.0.0/24" || n.Labels["kubernetes.io/hostname"] != nodeName || n.Labels["example.com/zone"] != "a" {
		t.Errorf("spec %+v labels %v", n.Spec, n.Labels)
	}
	// The pressure conditions report the host's real memory, disk and
	// PIDs (a busy CI disk can be under 10% free): only Ready is fixed.
	var types []string
	for _, c := range st.Conditions {
		status := string(c.Status)
		if c.Type != corev1.NodeReady && (status == "True" || status == "False") {
			status = "known"
		}
		types = append(types, string(c.Type)+"="+status)
		if c.LastHeartbeatTime.IsZero() || c.Reason == "" {
			t.Errorf("condition %+v", c)
		}
	}
	if got := strings.Join(types, " "); got != "MemoryPressure=known DiskPressure=known PIDPressure=known Ready=True" {
		t.Errorf("conditions %s", got)
	}

	// The lease is renewed, and owned by the node.
	var first *metav1.MicroTime
	eventually(t, "lease renewed", func(ctx context.Context) (bool, error) {
		l, err := env.Client.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, nodeName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if *l.Spec.HolderIdentity != nodeName || *l.Spec.LeaseDurationSeconds != 40 || len(l.OwnerReferences) != 1 || l.OwnerReferences[0].UID != n.UID {
			t.Fatalf("lease %+v", l)
		}
		if first == nil {
			first = l.Spec.RenewTime
			return false, nil
		}
		return l.Spec.RenewTime.After(first.Time), nil
	})
}

func TestPodRunsAndStatus(t *testing.T) {
	env := newEnv(t)
	n := startNode(t, env)
	p := pod("web",
		corev1.Container{Name: "app", Image: "busybox:1", Ports: []corev1.ContainerPort{{ContainerPort: 80}}},
		corev1.Container{Name: "helper", Image: "busybox:1"})
	p = create(t, env.Client, p)
	got := waitPod(t, env.Client, "web", "running and ready", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodRunning && ready(p)
	})
	st := got.Status
	if st.PodIP != "127.0.0.1" || st.HostIP != "192.0.2.10" || st.StartTime == nil || st.QOSClass != corev1.PodQOSBestEffort {
		t.Errorf("status %+v", st)
	}
	for _, name := range []string{"app", "helper"} {
		cs := status(got, name)
		if cs.State.Running == nil || !cs.Ready || cs.Started == nil || !*cs.Started || !strings.HasPrefix(cs.ContainerID, "skiff://") ||
			cs.Image != "busybox:1" || cs.ImageID == "" || cs.RestartCount != 0 {
			t.Errorf("%s: %+v", name, cs)
		}
	}
	var conds []string
	for _, c := range st.Conditions {
		conds = append(conds, string(c.Type)+"="+string(c.Status))
	}
	for _, want := range []string{"PodScheduled=True", "Initialized=True", "ContainersReady=True", "Ready=True", "PodReadyToStartContainers=True"} {
		if !slices.Contains(conds, want) {
			t.Errorf("conditions %v lack %s", conds, want)
		}
	}
	hasEvent(t, env.Client, "web", `Normal Pulled: Container image "busybox:1" already present on machine`)
	hasEvent(t, env.Client, "web", "Normal Created: Created container: app")
	hasEvent(t, env.Client, "web", "Normal Started: Started container helper")

	cfg, ok := n.rt.Config(string(p.UID), "app")
	if !ok {
		t.Fatal("no container config")
	}
	if cfg.Labels["io.kubernetes.pod.name"] != "web" || cfg.TerminationMessagePath != "/dev/termination-log" || cfg.CPUShares != 2 || cfg.OOMScoreAdj != 1000 {
		t.Errorf("config %+v", cfg)
	}
}

func TestGracefulDeletion(t *testing.T) {
	env := newEnv(t)
	n := startNode(t, env)
	always := corev1.ContainerRestartPolicyAlways
	p := pod("del",
		corev1.Container{Name: "app", Image: "busybox:1", Lifecycle: &corev1.Lifecycle{
			PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "drain"}}}}},
		corev1.Container{Name: "stubborn", Image: "busybox:1"})
	p.Spec.InitContainers = []corev1.Container{{Name: "side", Image: "busybox:1", RestartPolicy: &always}}
	grace := int64(1)
	p.Spec.TerminationGracePeriodSeconds = &grace
	n.rt.SetBehavior(func(c podruntime.ContainerConfig) agenttest.Behavior {
		return agenttest.Behavior{IgnoreSIGTERM: c.Name == "stubborn"}
	})
	p = create(t, env.Client, p)
	waitPod(t, env.Client, "del", "ready", ready)

	if err := env.Client.CoreV1().Pods("default").Delete(t.Context(), "del", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "pod gone from the API", func(ctx context.Context) (bool, error) {
		_, err := env.Client.CoreV1().Pods("default").Get(ctx, "del", metav1.GetOptions{})
		return apierrors.IsNotFound(err), nil
	})
	calls := n.rt.Calls()
	preStop, stopApp, stopSide := callIndex(calls, "Exec app [sh -c drain]"), callIndex(calls, "Stop app"), callIndex(calls, "Stop side")
	if preStop < 0 || stopApp < preStop || stopSide < stopApp || stopSide < callIndex(calls, "Stop stubborn") {
		t.Errorf("want preStop, then SIGTERM of the app containers, then of the sidecar; calls:\n%s", strings.Join(calls, "\n"))
	}
	if len(n.rt.Running(string(p.UID))) > 0 || callIndex(calls, "RemoveSandbox del") < 0 {
		t.Errorf("left running or sandbox kept; calls:\n%s", strings.Join(calls, "\n"))
	}
	hasEvent(t, env.Client, "del", "Normal Killing: Stopping container app")
}

func TestCrashLoopBackOff(t *testing.T) {
	env := newEnv(t)
	n := startNode(t, env)
	n.rt.SetBehavior(func(c podruntime.ContainerConfig) agenttest.Behavior {
		return agenttest.Behavior{ExitAfter: 20 * time.Millisecond, ExitCode: 3}
	})
	create(t, env.Client, pod("crash"))
	got := waitPod(t, env.Client, "crash", "in CrashLoopBackOff after 3 restarts", func(p *corev1.Pod) bool {
		return waiting(p, "app", "CrashLoopBackOff") && status(p, "app").RestartCount >= 3
	})
	cs := status(got, "app")
	last := cs.LastTerminationState.Terminated
	if last == nil || last.ExitCode != 3 || last.Reason != "Error" || !strings.HasPrefix(last.ContainerID, "skiff://") {
		t.Errorf("lastState %+v", cs.LastTerminationState)
	}
	if msg := cs.State.Waiting.Message; !strings.Contains(msg, "restarting failed container=app pod=crash_default(") {
		t.Errorf("waiting message %q", msg)
	}
	if got.Status.Phase != corev1.PodRunning {
		t.Errorf("phase %s, want Running", got.Status.Phase)
	}
	hasEvent(t, env.Client, "crash", "Warning BackOff: Back-off restarting failed container app in pod crash_default(")
	// Restarts wait at least 200 ms, 400 ms, 800 ms (the back-off doubles
	// from BackOffInitial; the first restart is immediate).
	waitPod(t, env.Client, "crash", "4 restarts", func(p *corev1.Pod) bool { return status(p, "app").RestartCount >= 4 })
	_ = n
}
