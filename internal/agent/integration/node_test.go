// Package integration_test runs the node agent on the real pod runtime
// (package podruntime over skiff-shim and libcontainer), wired as the
// daemon wires it, against an in-process API server. As root, the test
// binary re-executes itself in a private network namespace (the node):
// the pods bridge, veths and nftables rules live and die there.
package integration_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"skiff.dev/skiff/internal/daemon"
	"skiff.dev/skiff/internal/image/content"
	"skiff.dev/skiff/internal/image/images"
	"skiff.dev/skiff/internal/runtime/runtimetest"
	"skiff.dev/skiff/internal/testenv"
)

func TestMain(m *testing.M) { runtimetest.MainInNetNS(m) }

// node is a node agent on the real runtime.
type node struct {
	opts daemon.AgentOptions
	stop func()
}

func startNode(t testing.TB, env *testenv.Env, dir string) *node {
	t.Helper()
	n := &node{opts: nodeOptions(t, env, dir)}
	n.start(t)
	return n
}

// nodeOptions are the options of a node with its state under dir.
func nodeOptions(t testing.TB, env *testenv.Env, dir string) daemon.AgentOptions {
	return daemon.AgentOptions{
		Config:   env.Config,
		NodeName: "node1",
		DataDir:  filepath.Join(dir, "data"),
		RunDir:   filepath.Join(dir, "run"),
		LogDir:   filepath.Join(dir, "logs"),
		ShimPath: runtimetest.ShimBinary(t),
		PodCIDR:  "10.244.0.0/24",
		Logger:   slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}
}

func (n *node) start(t testing.TB) {
	t.Helper()
	ready := make(chan struct{})
	o := n.opts
	o.Ready = ready
	n.stop = testenv.Run(t, "node", func(ctx context.Context) error { return daemon.RunAgent(ctx, o) })
	select {
	case <-ready:
	case <-time.After(60 * time.Second):
		t.Fatal("node not ready after 60s")
	}
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// TestRealNode runs pods on the real runtime: a two-container pod with a
// readiness probe over the pod network and an exec liveness probe, the
// downward API and a ConfigMap volume; a failing pod with a termination
// message; a bad command; graceful deletion leaving nothing behind; and
// an agent restart that restarts nothing.
func TestRealNode(t *testing.T) {
	runtimetest.SkipUnlessRoot(t)
	if !runtimetest.InNetNS() {
		t.Skip("skipping: needs its own network namespace (unshare from util-linux)")
	}
	loUp(t)
	dir := t.TempDir()
	importBusybox(t, filepath.Join(dir, "data"))
	env := testenv.Start(t, testenv.WithoutControllers)
	c := env.Client
	ctx := t.Context()
	n := startNode(t, env, dir)
	// Whatever happens, the pods go (and their containers, mounts and
	// veths with them) before the node stops.
	t.Cleanup(func() { removeAllPods(t, c, dir) })

	if _, err := c.CoreV1().ConfigMaps("default").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "site"}, Data: map[string]string{"index.html": "hello from a pod\n"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	grace := int64(2)
	web := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.PodSpec{
			NodeName:                      "node1",
			TerminationGracePeriodSeconds: &grace,
			Volumes: []corev1.Volume{{Name: "site", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: "site"}}}}},
			Containers: []corev1.Container{
				{
					Name: "httpd", Image: "busybox", ImagePullPolicy: corev1.PullNever,
					Command:      []string{"httpd", "-f", "-p", "8080", "-h", "/www"},
					Ports:        []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
					VolumeMounts: []corev1.VolumeMount{{Name: "site", MountPath: "/www"}},
					ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
						Path: "/index.html", Port: intstr.FromString("http")}}, PeriodSeconds: 1},
					LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{
						Command: []string{"test", "-f", "/www/index.html"}}}, PeriodSeconds: 1},
				},
				{
					Name: "client", Image: "busybox", ImagePullPolicy: corev1.PullNever,
					Command: []string{"sh", "-c", "echo $(MY_IP) > /tmp/ip; exec sleep 3600"},
					Env: []corev1.EnvVar{{Name: "MY_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{
						FieldPath: "status.podIP"}}}},
					ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{
						Command: []string{"sh", "-c", `grep -q '^10\.244\.0\.' /tmp/ip && wget -q -O - http://127.0.0.1:8080/index.html | grep -q 'hello from a pod'`}}},
						PeriodSeconds: 1},
				},
			},
		},
	}
	web, err := c.CoreV1().Pods("default").Create(ctx, web, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := waitPod(t, c, "web", "running and ready", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodRunning && isReady(p)
	})
	ip, err := netip.ParseAddr(got.Status.PodIP)
	if err != nil || !netip.MustParsePrefix("10.244.0.0/24").Contains(ip) {
		t.Errorf("pod IP %q", got.Status.PodIP)
	}
	for _, cs := range got.Status.ContainerStatuses {
		if !strings.HasPrefix(cs.ContainerID, "skiff://") || cs.ImageID == "" || cs.State.Running == nil {
			t.Errorf("container status %+v", cs)
		}
	}

	failing := simplePod("fails", corev1.RestartPolicyNever, "echo 'bad config' > /dev/termination-log; exit 3")
	if _, err := c.CoreV1().Pods("default").Create(ctx, failing, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got = waitPod(t, c, "fails", "failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	term := got.Status.ContainerStatuses[0].State.Terminated
	if term == nil || term.ExitCode != 3 || term.Reason != "Error" || term.Message != "bad config\n" {
		t.Errorf("terminated %+v", term)
	}

	bad := simplePod("badcmd", corev1.RestartPolicyAlways, "")
	bad.Spec.Containers[0].Command = []string{"nope"}
	if _, err := c.CoreV1().Pods("default").Create(ctx, bad, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got = waitPod(t, c, "badcmd", "failing to start", func(p *corev1.Pod) bool {
		if len(p.Status.ContainerStatuses) == 0 {
			return false
		}
		w := p.Status.ContainerStatuses[0].State.Waiting
		return w != nil && (w.Reason == "RunContainerError" || w.Reason == "CrashLoopBackOff")
	})
	last := got.Status.ContainerStatuses[0].LastTerminationState.Terminated
	w := got.Status.ContainerStatuses[0].State.Waiting
	if !strings.Contains(w.Message+fmt.Sprint(last), `executable file not found`) {
		t.Errorf("waiting %+v, last %+v", w, last)
	}

	// An agent restart adopts the running containers.
	before := waitPod(t, c, "web", "ready", isReady)
	n.stop()
	n.start(t)
	time.Sleep(2 * time.Second)
	after := waitPod(t, c, "web", "ready", isReady)
	for i, cs := range after.Status.ContainerStatuses {
		b := before.Status.ContainerStatuses[i]
		if cs.ContainerID != b.ContainerID || cs.RestartCount != 0 {
			t.Errorf("%s restarted across the agent restart: %s → %s", cs.Name, b.ContainerID, cs.ContainerID)
		}
	}

	// Graceful deletion removes everything.
	for _, name := range []string{"web", "fails", "badcmd"} {
		if err := c.CoreV1().Pods("default").Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "pods gone", func(ctx context.Context) (bool, error) {
		list, err := c.CoreV1().Pods("default").List(ctx, metav1.ListOptions{})
		return err == nil && len(list.Items) == 0, err
	})
	eventually(t, "pod directories removed", func(context.Context) (bool, error) {
		entries, _ := os.ReadDir(filepath.Join(dir, "data", "node", "agent", "pods"))
		return len(entries) == 0, nil
	})
	if links, _ := netlink.LinkList(); len(links) > 0 {
		for _, l := range links {
			if l.Type() == "veth" {
				t.Errorf("veth %s left", l.Attrs().Name)
			}
		}
	}
}

// removeAllPods deletes every pod at once and waits for the node to have
// cleaned them up.
func removeAllPods(t testing.TB, c kubernetes.Interface, dir string) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	zero := int64(0)
	_ = c.CoreV1().Pods("default").DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: &zero}, metav1.ListOptions{})
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(context.Context) (bool, error) {
		pods, _ := os.ReadDir(filepath.Join(dir, "data", "node", "agent", "pods"))
		containers, _ := os.ReadDir(filepath.Join(dir, "data", "node", "podruntime", "containers"))
		return len(pods) == 0 && len(containers) == 0, nil
	})
	if err != nil {
		t.Errorf("cleanup: the node did not remove its pods: %v", err)
	}
}

func simplePod(name string, policy corev1.RestartPolicy, script string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PodSpec{
			NodeName:      "node1",
			RestartPolicy: policy,
			Containers: []corev1.Container{{Name: "main", Image: "busybox", ImagePullPolicy: corev1.PullNever,
				Command: []string{"sh", "-c", script}}},
		},
	}
}

func isReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func waitPod(t *testing.T, c kubernetes.Interface, name, what string, cond func(*corev1.Pod) bool) *corev1.Pod {
	t.Helper()
	var got *corev1.Pod
	eventually(t, name+": "+what, func(ctx context.Context) (bool, error) {
		p, err := c.CoreV1().Pods("default").Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		got = p
		return cond(p), nil
	})
	return got
}

func eventually(t *testing.T, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	var last error
	err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, 60*time.Second, true, func(ctx context.Context) (bool, error) {
		ok, err := cond(ctx)
		if err != nil && !apierrors.IsNotFound(err) {
			last = err
		}
		return ok, nil
	})
	if err != nil {
		t.Fatalf("%s: %v (last error: %v)", what, err, last)
	}
}

// loUp brings up the loopback of the test's network namespace (the API
// server listens there).
func loUp(t testing.TB) {
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
}

// importBusybox imports a busybox root filesystem as image "busybox" into
// the node's image store under dataDir.
func importBusybox(t testing.TB, dataDir string) {
	t.Helper()
	buf := bytes.NewBuffer(runtimetest.BusyboxTar(t))
	store := content.New(filepath.Join(dataDir, "images"))
	if err := store.Init(); err != nil {
		t.Fatal(err)
	}
	if _, err := images.New(store).Import(context.Background(), buf, "busybox"); err != nil {
		t.Fatal(err)
	}
}
