package metricsapi_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	metricsclientset "k8s.io/metrics/pkg/client/clientset/versioned"

	"skiff.dev/skiff/internal/controllers/hpa"
	"skiff.dev/skiff/internal/daemon"
	"skiff.dev/skiff/internal/metricsapi"
	"skiff.dev/skiff/internal/testenv"
)

// clockNode is a node whose containers use fixed CPU rates (cores) and
// memory, sampled at the time of each scrape.
type clockNode struct {
	node       string
	since      time.Time                // the containers' start: their usage is small numbers, as a kubelet's
	containers map[[3]string][2]float64 // namespace, pod, container → cores, bytes
}

func (c clockNode) Get(_ context.Context, node, path string) (*http.Response, error) {
	if node != c.node || path != metricsapi.ResourceMetricsPath {
		return nil, fmt.Errorf("node %s: no route to host", node)
	}
	elapsed := time.Since(c.since).Milliseconds()
	ms := c.since.UnixMilli() + elapsed
	sec := float64(elapsed) / 1000
	var b strings.Builder
	fmt.Fprintf(&b, "node_cpu_usage_seconds_total %v %d\nnode_memory_working_set_bytes %d %d\n", 1.5*sec, ms, 3<<30, ms)
	for k, v := range c.containers {
		l := fmt.Sprintf(`{container=%q,namespace=%q,pod=%q}`, k[2], k[0], k[1])
		fmt.Fprintf(&b, "container_cpu_usage_seconds_total%s %v %d\ncontainer_memory_working_set_bytes%s %v %d\n", l, v[0]*sec, ms, l, v[1], ms)
	}
	return &http.Response{StatusCode: http.StatusOK, Status: "200 OK", Body: io.NopCloser(strings.NewReader(b.String()))}, nil
}

// TestKubectlTop runs the real kubectl against the in-process API server
// whose metrics API scrapes a fake node: top pods, top nodes, and get on
// the group's resources (server-side tables); and the HPA controller's
// metrics client.
func TestKubectlTop(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the skiff binary")
	}
	fake := clockNode{node: "node1", since: time.Now(), containers: map[[3]string][2]float64{
		{"default", "busy", "burn"}:    {0.75, 64 << 20},
		{"default", "busy", "sidecar"}: {0.001, 8 << 20},
		{"default", "idle", "sleep"}:   {0.0001, 1 << 20}, // metrics-server drops a container that never used CPU
	}}
	env := testenv.Start(t, testenv.WithoutControllers, func(o *daemon.ServerOptions) {
		o.MetricsNodes, o.MetricsResolution = fake, 300*time.Millisecond
	})
	kubectl := filepath.Join(filepath.Dir(testenv.Binary(t)), "kubectl")
	ctx := t.Context()
	c := env.Client

	node, err := c.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node1", Labels: map[string]string{"role": "worker"}}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	node.Status = corev1.NodeStatus{
		Conditions:  []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.Now()}},
		Capacity:    corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("8Gi")},
		Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("6Gi")},
	}
	if _, err := c.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"busy", "idle", "new"} {
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": name}},
			Spec:       corev1.PodSpec{NodeName: "node1", Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
		}
		if _, err := c.CoreV1().Pods("default").Create(ctx, p, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mc, err := metricsclientset.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "pod metrics", func(ctx context.Context) (bool, error) {
		l, err := mc.MetricsV1beta1().PodMetricses("default").List(ctx, metav1.ListOptions{})
		return err == nil && len(l.Items) == 2, nil
	})

	// The HPA controller's client lists PodMetrics by label selector.
	usage, _, err := hpa.NewMetricsClient(mc).PodUsage(ctx, corev1.ResourceCPU, "default", labels.SelectorFromSet(labels.Set{"app": "busy"}), "")
	if err != nil || len(usage) != 1 || usage["busy"].Value < 750 || usage["busy"].Value > 752 || usage["busy"].Window <= 0 {
		t.Errorf("HPA metrics client: %v %+v", err, usage)
	}

	run := func(args ...string) (string, error) {
		cmd := exec.CommandContext(ctx, kubectl, append([]string{"--kubeconfig", env.Kubeconfig}, args...)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	for _, tc := range []struct {
		name string
		args []string
		// want are regular expressions, each matching a line. CPU may
		// be 1m over: float seconds lose nanoseconds, and kubectl rounds
		// millicores up.
		want []string
		fail bool
	}{
		{"top pods", []string{"top", "pods"}, []string{
			`^NAME\s+CPU\(cores\)\s+MEMORY\(bytes\)$`, `^busy\s+75[0-2]m\s+72Mi$`, `^idle\s+1m\s+1Mi$`}, false},
		{"top pod with containers", []string{"top", "pod", "busy", "--containers"}, []string{
			`^POD\s+NAME\s+CPU\(cores\)\s+MEMORY\(bytes\)$`, `^busy\s+burn\s+75[01]m\s+64Mi$`, `^busy\s+sidecar\s+[12]m\s+8Mi$`}, false},
		{"top pods by label, all namespaces", []string{"top", "pods", "-A", "-l", "app=idle"}, []string{
			`^NAMESPACE\s+NAME\s+CPU\(cores\)\s+MEMORY\(bytes\)$`, `^default\s+idle\s+1m\s+1Mi$`}, false},
		{"top nodes", []string{"top", "nodes"}, []string{
			`^NAME\s+CPU\(cores\)\s+CPU\(%\)\s+MEMORY\(bytes\)\s+MEMORY\(%\)`, `^node1\s+150[01]m\s+75%\s+3072Mi\s+50%`}, false},
		{"top a pod without metrics", []string{"top", "pod", "new"}, []string{
			`podmetrics.metrics.k8s.io "default/new" not found`}, true},
		{"get podmetrics: a server-side table", []string{"get", "podmetrics.metrics.k8s.io"}, []string{
			`^NAME\s+CPU\s+MEMORY\s+WINDOW$`, `^busy\s+(75\dm|7[45]\d{7}n)\s+72Mi\s+\S+s$`}, false},
		{"api-resources", []string{"api-resources", "--api-group=metrics.k8s.io"}, []string{
			`^nodes\s+metrics.k8s.io/v1beta1\s+false\s+NodeMetrics$`, `^pods\s+metrics.k8s.io/v1beta1\s+true\s+PodMetrics$`}, false},
		{"get nodemetrics by label", []string{"get", "nodemetrics", "-l", "role=worker", "-o", "name"}, []string{
			`^nodemetrics.metrics.k8s.io/node1$`}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := run(tc.args...)
			if (err != nil) != tc.fail {
				t.Fatalf("kubectl %s: %v\n%s", strings.Join(tc.args, " "), err, out)
			}
			lines := strings.Split(strings.TrimSpace(out), "\n")
			for _, w := range tc.want {
				re := regexp.MustCompile(w)
				found := false
				for _, l := range lines {
					found = found || re.MatchString(strings.TrimSpace(l))
				}
				if !found {
					t.Errorf("kubectl %s: no line matches %s:\n%s", strings.Join(tc.args, " "), w, out)
				}
			}
		})
	}
}
