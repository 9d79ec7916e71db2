package integration_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
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
	metricsclientset "k8s.io/metrics/pkg/client/clientset/versioned"
	"k8s.io/utils/ptr"

	"skiff.dev/skiff/internal/agent/podruntime"
	"skiff.dev/skiff/internal/agent/stats"
	"skiff.dev/skiff/internal/controllers/deployment"
	"skiff.dev/skiff/internal/controllers/hpa"
	"skiff.dev/skiff/internal/controllers/replicaset"
	"skiff.dev/skiff/internal/daemon"
	"skiff.dev/skiff/internal/runtime/runtimetest"
	"skiff.dev/skiff/internal/testenv"
)

// metricsNode starts a server whose metrics API scrapes every second and
// a node whose agent server (with the stats handler) listens on
// loopback, the address its Node publishes.
func metricsNode(t *testing.T, serverOpts ...func(*daemon.ServerOptions)) (*testenv.Env, string) {
	t.Helper()
	runtimetest.SkipUnlessRoot(t)
	if !runtimetest.InNetNS() {
		t.Skip("skipping: needs its own network namespace (unshare from util-linux)")
	}
	loUp(t)
	dir := t.TempDir()
	importBusybox(t, filepath.Join(dir, "data"))
	env := testenv.Start(t, append([]func(*daemon.ServerOptions){testenv.WithoutControllers,
		func(o *daemon.ServerOptions) { o.MetricsResolution = time.Second }}, serverOpts...)...)
	n := &node{opts: daemon.AgentOptions{
		Config:     env.Config,
		NodeName:   "node1",
		NodeIP:     "127.0.0.1",
		ServerAddr: "127.0.0.1:0",
		DataDir:    filepath.Join(dir, "data"),
		RunDir:     filepath.Join(dir, "run"),
		LogDir:     filepath.Join(dir, "logs"),
		ShimPath:   runtimetest.ShimBinary(t),
		PodCIDR:    "10.244.0.0/24",
		Logger:     slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}}
	n.start(t)
	t.Cleanup(func() { removeAllPods(t, env.Client, dir) })
	return env, dir
}

// burnPod runs script in busybox, its CPU limited so that a busy loop
// takes a fifth of a core, not a whole one of the shared machine.
func burnPod(name, script string) *corev1.Pod {
	p := simplePod(name, corev1.RestartPolicyAlways, script)
	p.Labels = map[string]string{"app": name}
	p.Spec.Containers[0].Resources = corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")},
		Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("200m")},
	}
	return p
}

// podCgroups is a stats.Runtime read from the API: the pods' UIDs and
// their containers' IDs, where the pod runtime puts their cgroups.
type podCgroups struct {
	t    *testing.T
	c    kubernetes.Interface
	pods []string
}

func (p podCgroups) Cgroups() []podruntime.PodCgroups {
	var out []podruntime.PodCgroups
	for _, name := range p.pods {
		pod, err := p.c.CoreV1().Pods("default").Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			p.t.Errorf("get pod %s: %v", name, err)
			continue
		}
		pc := podruntime.PodCgroups{PodUID: string(pod.UID), Namespace: pod.Namespace, Name: pod.Name,
			Cgroup: "/skiff/pods/pod" + string(pod.UID)}
		for _, cs := range pod.Status.ContainerStatuses {
			id := strings.TrimPrefix(cs.ContainerID, "skiff://")
			pc.Containers = append(pc.Containers, podruntime.ContainerCgroup{ID: id, Name: cs.Name, Cgroup: pc.Cgroup + "/" + id})
		}
		out = append(out, pc)
	}
	return out
}

// TestRealPodMetrics: a busy pod's cgroup shows CPU and an idle one's
// hardly any, both use memory — read by package stats directly, served
// by the agent (through the API server's node proxy) and by
// metrics.k8s.io to the real `kubectl top`.
func TestRealPodMetrics(t *testing.T) {
	env, _ := metricsNode(t)
	c := env.Client
	ctx := t.Context()
	for _, p := range []*corev1.Pod{burnPod("busy", "while :; do :; done"), burnPod("idle", "exec sleep 3600")} {
		if _, err := c.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"busy", "idle"} {
		waitPod(t, c, name, "running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	}

	t.Run("stats from the cgroups", func(t *testing.T) {
		col := stats.New(podCgroups{t: t, c: c, pods: []string{"busy", "idle"}}, stats.Options{NodeName: "node1"})
		if _, err := col.Summary(ctx); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second)
		s, err := col.Summary(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if s.Node.CPU == nil || s.Node.CPU.UsageNanoCores == nil || s.Node.Memory == nil || *s.Node.Memory.WorkingSetBytes == 0 {
			t.Errorf("node stats %+v", s.Node)
		}
		if len(s.Pods) != 2 {
			t.Fatalf("pods %+v", s.Pods)
		}
		for _, p := range s.Pods {
			if len(p.Containers) != 1 || p.CPU == nil || p.Memory == nil {
				t.Fatalf("pod %s: %+v", p.PodRef.Name, p)
			}
			ctr := p.Containers[0]
			if ctr.CPU == nil || ctr.CPU.UsageNanoCores == nil || ctr.Memory == nil || *ctr.Memory.WorkingSetBytes == 0 {
				t.Fatalf("container of %s: %+v", p.PodRef.Name, ctr)
			}
			cores := float64(*ctr.CPU.UsageNanoCores) / 1e9
			t.Logf("%s: %.3f cores, working set %d bytes", p.PodRef.Name, cores, *ctr.Memory.WorkingSetBytes)
			switch p.PodRef.Name {
			case "busy":
				if cores < 0.05 {
					t.Errorf("busy pod uses %.3f cores", cores)
				}
			case "idle":
				if cores > 0.02 {
					t.Errorf("idle pod uses %.3f cores", cores)
				}
			}
			if *p.CPU.UsageCoreNanoSeconds < *ctr.CPU.UsageCoreNanoSeconds {
				t.Errorf("pod %s CPU %d below its container's %d", p.PodRef.Name, *p.CPU.UsageCoreNanoSeconds, *ctr.CPU.UsageCoreNanoSeconds)
			}
		}
	})

	t.Run("the agent's endpoints through the node proxy", func(t *testing.T) {
		raw, err := c.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes/node1/proxy/metrics/resource").DoRaw(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{
			`container_cpu_usage_seconds_total{container="main",namespace="default",pod="busy"} `,
			`container_memory_working_set_bytes{container="main",namespace="default",pod="idle"} `,
			`pod_cpu_usage_seconds_total{namespace="default",pod="busy"} `,
			"node_memory_working_set_bytes ", "resource_scrape_error 0",
		} {
			if !strings.Contains(string(raw), want) {
				t.Errorf("/metrics/resource lacks %q:\n%s", want, raw)
			}
		}
		raw, err = c.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes/node1/proxy/stats/summary").DoRaw(ctx)
		if err != nil || !strings.Contains(string(raw), `"nodeName": "node1"`) || !strings.Contains(string(raw), `"workingSetBytes"`) {
			t.Errorf("/stats/summary: %v\n%s", err, raw)
		}
	})

	t.Run("kubectl top", func(t *testing.T) {
		kubectl := filepath.Join(filepath.Dir(testenv.Binary(t)), "kubectl")
		top := func(args ...string) (string, error) {
			out, err := exec.CommandContext(ctx, kubectl, append([]string{"--kubeconfig", env.Kubeconfig, "top"}, args...)...).CombinedOutput()
			return string(out), err
		}
		var out string
		eventually(t, "kubectl top pods shows the busy pod busy", func(context.Context) (bool, error) {
			var err error
			out, err = top("pods")
			if err != nil {
				return false, nil // metrics not available yet
			}
			busy, idle := millicores(out, "busy"), millicores(out, "idle")
			return busy >= 50 && idle >= 0 && idle <= 20, nil
		})
		t.Logf("kubectl top pods:\n%s", out)
		// kubectl shows whole MiB: a busybox sleep's 200 KiB is 0Mi;
		// the API has the bytes.
		pm, err := metricsclientset.NewForConfigOrDie(env.Config).MetricsV1beta1().PodMetricses("default").Get(ctx, "idle", metav1.GetOptions{})
		if err != nil || len(pm.Containers) != 1 || pm.Containers[0].Usage.Memory().Value() <= 0 || pm.Window.Duration <= 0 {
			t.Errorf("idle pod's metrics: %v %+v", err, pm)
		}
		eventually(t, "kubectl top nodes", func(context.Context) (bool, error) {
			var err error
			out, err = top("nodes")
			return err == nil && regexp.MustCompile(`(?m)^node1\s+\d+m\s+\d+%\s+\d+Mi\s+\d+%`).MatchString(out), nil
		})
		t.Logf("kubectl top nodes:\n%s", out)
	})
}

// millicores finds pod's CPU in `kubectl top pods` output; -1 if absent.
func millicores(out, pod string) int {
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(pod) + `\s+(\d+)m\s`).FindStringSubmatch(out)
	if m == nil {
		return -1
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// TestHPAOnRealCPU: `kubectl autoscale` on a Deployment whose pods burn
// CPU while a file exists; the HPA controller, reading metrics.k8s.io
// (the agent's cgroup stats scraped by the metrics API), scales it up to
// its maximum, and back to its minimum once the file is gone (with the
// scale-down stabilization window shortened to seconds).
func TestHPAOnRealCPU(t *testing.T) {
	env, _ := metricsNode(t)
	c := env.Client
	ctx := t.Context()
	ctl := t.TempDir()
	burn := filepath.Join(ctl, "burn")
	if err := os.WriteFile(burn, nil, 0o644); err != nil {
		t.Fatal(err)
	}

	mc, err := metricsclientset.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	b := record.NewBroadcaster()
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.CoreV1().Events("")})
	t.Cleanup(b.Shutdown)
	recorder := func(component string) record.EventRecorder {
		return b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: component})
	}
	factory := informers.NewSharedInformerFactory(c, 0)
	loops := map[string]interface {
		Run(ctx context.Context, workers int) error
	}{
		"deployment": deployment.New(c, factory, recorder("deployment-controller"), log, deployment.Options{}),
		"replicaset": replicaset.New(c, factory, recorder("replicaset-controller"), log, replicaset.Options{}),
		"hpa": hpa.New(c, factory, recorder("horizontal-pod-autoscaler"), log, hpa.Options{
			Metrics: hpa.NewMetricsClient(mc), SyncPeriod: time.Second, DownscaleStabilization: 5 * time.Second,
		}),
	}
	for name, l := range loops {
		testenv.Run(t, name, func(ctx context.Context) error { return l.Run(ctx, 1) })
	}
	testenv.Run(t, "informers", func(ctx context.Context) error {
		factory.Start(ctx.Done())
		<-ctx.Done()
		factory.Shutdown()
		return nil
	})

	tmpl := burnPod("burn", `while :; do if [ -e /ctl/burn ]; then :; else sleep 1; fi; done`)
	tmpl.Spec.Volumes = []corev1.Volume{{Name: "ctl", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: ctl}}}}
	tmpl.Spec.Containers[0].VolumeMounts = []corev1.VolumeMount{{Name: "ctl", MountPath: "/ctl"}}
	grace := int64(1)
	tmpl.Spec.TerminationGracePeriodSeconds = &grace
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "burn"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](1),
			Selector: &metav1.LabelSelector{MatchLabels: tmpl.Labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: tmpl.Labels}, Spec: tmpl.Spec},
		},
	}
	if _, err := c.AppsV1().Deployments("default").Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	kubectl := filepath.Join(filepath.Dir(testenv.Binary(t)), "kubectl")
	if out, err := exec.CommandContext(ctx, kubectl, "--kubeconfig", env.Kubeconfig,
		"autoscale", "deployment", "burn", "--cpu-percent=50", "--min=1", "--max=3").CombinedOutput(); err != nil {
		t.Fatalf("kubectl autoscale: %v\n%s", err, out)
	}

	// 200m of 100m requested is 200% of the 50% target: the most.
	var st autoscalingv2.HorizontalPodAutoscalerStatus
	waitHPA := func(what string, cond func() bool) {
		t.Helper()
		err := wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
			h, err := c.AutoscalingV2().HorizontalPodAutoscalers("default").Get(ctx, "burn", metav1.GetOptions{})
			if err != nil {
				return false, nil
			}
			st = h.Status
			return cond(), nil
		})
		if err != nil {
			t.Fatalf("%s: %v; status %+v", what, err, st)
		}
	}
	utilization := func() int32 {
		if len(st.CurrentMetrics) == 0 || st.CurrentMetrics[0].Resource == nil {
			return -1
		}
		return ptr.Deref(st.CurrentMetrics[0].Resource.Current.AverageUtilization, -1)
	}
	waitHPA("scaled up to 3", func() bool { return st.DesiredReplicas == 3 })
	t.Logf("scaled up: utilization %d%%", utilization())
	eventually(t, "3 burning pods running", func(ctx context.Context) (bool, error) {
		pods, err := c.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=burn"})
		running := 0
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
				running++
			}
		}
		return err == nil && running == 3, err
	})

	if err := os.Remove(burn); err != nil {
		t.Fatal(err)
	}
	waitHPA("scaled down to 1", func() bool { return st.DesiredReplicas == 1 && st.CurrentReplicas <= 3 })
	t.Logf("scaled down: utilization %d%%", utilization())
	if u := utilization(); u < 0 || u > 50 {
		t.Errorf("utilization after the load stopped: %d%%", u)
	}
	eventually(t, "the deployment at 1 replica", func(ctx context.Context) (bool, error) {
		got, err := c.AppsV1().Deployments("default").Get(ctx, "burn", metav1.GetOptions{})
		return err == nil && *got.Spec.Replicas == 1, err
	})
}

// BenchmarkAgentScrape runs a real `skiff agent` process against the
// in-process API server and measures one /metrics/resource scrape of it
// through the API server's node proxy (what the metrics API does, less
// the proxy hop), after reporting the agent's idle RSS: VmRSS and its
// anonymous part, 15 s after the node is Ready.
func BenchmarkAgentScrape(b *testing.B) {
	runtimetest.SkipUnlessRoot(b)
	if !runtimetest.InNetNS() {
		b.Skip("skipping: needs its own network namespace (unshare from util-linux)")
	}
	loUp(b)
	env := testenv.Start(b, testenv.WithoutControllers)
	dir := b.TempDir()
	cmd := exec.Command(testenv.Binary(b), "agent", "--kubeconfig", env.Kubeconfig, "--node-name", "node1",
		"--node-ip", "127.0.0.1", "--data-dir", filepath.Join(dir, "data"), "--run-dir", filepath.Join(dir, "run"),
		"--log-dir", filepath.Join(dir, "logs"), "--shim", runtimetest.ShimBinary(b))
	cmd.Stdout, cmd.Stderr = testWriter{b}, testWriter{b}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	ctx := b.Context()
	c := env.Client
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		n, err := c.CoreV1().Nodes().Get(ctx, "node1", metav1.GetOptions{})
		return err == nil && slices.ContainsFunc(n.Status.Conditions, func(c corev1.NodeCondition) bool {
			return c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue
		}), nil
	})
	if err != nil {
		b.Fatalf("node not ready: %v", err)
	}
	time.Sleep(15 * time.Second)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	kib := func(field string) float64 {
		m := regexp.MustCompile(`(?m)^` + field + `:\s+(\d+) kB`).FindSubmatch(status)
		if m == nil {
			b.Fatalf("no %s in /proc/pid/status", field)
		}
		v, _ := strconv.ParseFloat(string(m[1]), 64)
		return v
	}
	rss, anon := kib("VmRSS")/1024, kib("RssAnon")/1024
	for b.Loop() {
		if _, err := c.CoreV1().RESTClient().Get().AbsPath("/api/v1/nodes/node1/proxy/metrics/resource").DoRaw(ctx); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(rss, "agent-idle-rss-MiB")
	b.ReportMetric(anon, "agent-idle-anon-MiB")
}
