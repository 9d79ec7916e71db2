package integration_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/intstr"

	"skiff.dev/skiff/internal/mesh/meshconfig"
	"skiff.dev/skiff/internal/printers"
	"skiff.dev/skiff/internal/runtime/runtimetest"
	"skiff.dev/skiff/internal/testenv"
)

// standInProxy is the sidecar for this test (the real skiff-proxy needs
// the node's mesh server): ready on :15021 only after readyAfter and
// only when the mesh directory is mounted, answering "captured" to any
// HTTP request on the outbound capture port, and performing the app's
// rewritten httpGet probes (ISTIO_KUBE_APP_PROBERS) on :15020 against
// 127.0.0.1 as internal/mesh/sidecar does.
const standInProxy = `package main

import (
	"encoding/json"
	"net/http"
	"os"
	"strconv"
	"time"
)

const readyAfter = 3 * time.Second

type prober struct {
	HTTPGet *struct {
		Path string ` + "`json:\"path\"`" + `
		Port int    ` + "`json:\"port\"`" + `
	} ` + "`json:\"httpGet\"`" + `
}

func main() {
	start := time.Now()
	go http.ListenAndServe(":15001", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("captured " + r.Host + "\n"))
	}))
	var probers map[string]prober
	if err := json.Unmarshal([]byte(os.Getenv("ISTIO_KUBE_APP_PROBERS")), &probers); err != nil {
		os.Stderr.WriteString("no app probers: " + err.Error() + "\n")
	}
	go http.ListenAndServe(":15020", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := probers[r.URL.Path]
		if !ok || p.HTTPGet == nil {
			http.NotFound(w, r)
			return
		}
		res, err := (&http.Client{Timeout: time.Second}).Get("http://127.0.0.1:" + strconv.Itoa(p.HTTPGet.Port) + p.HTTPGet.Path)
		if err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		res.Body.Close()
		w.WriteHeader(res.StatusCode)
	}))
	http.ListenAndServe(":15021", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := os.Stat("/var/run/skiff-mesh"); err != nil || time.Since(start) < readyAfter {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	}))
}
`

func buildStandInProxy(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(standInProxy), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module standin\n\ngo 1.22\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "skiff-proxy")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building the stand-in proxy: %v\n%s", err, out)
	}
	return bin
}

// TestMeshedJob runs a Job whose pod gets the injected sidecar: the node
// makes the sidecar image from the proxy binary, the app starts only
// once the sidecar's startup probe passes, the app's outbound HTTP is
// captured into the sidecar, and the Job completes (the sidecar stops
// after the app exits). Deleting the pod removes its mesh directory.
func TestMeshedJob(t *testing.T) {
	runtimetest.SkipUnlessRoot(t)
	if !runtimetest.InNetNS() {
		t.Skip("skipping: needs its own network namespace (unshare from util-linux)")
	}
	loUp(t)
	dir := t.TempDir()
	importBusybox(t, filepath.Join(dir, "data"))
	proxy := buildStandInProxy(t)
	env := testenv.Start(t) // with controllers: the Job controller and the scheduler
	c := env.Client
	ctx := t.Context()
	n := &node{opts: nodeOptions(t, env, dir)}
	n.opts.ProxyPath = proxy
	n.start(t)
	t.Cleanup(func() { removeAllPods(t, c, dir) })

	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{Name: "meshed", Namespace: "default"},
		Spec: batchv1.JobSpec{
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{meshconfig.InjectAnnotation: "true"}},
				Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyNever,
					Containers: []corev1.Container{{
						Name: "app", Image: "busybox", ImagePullPolicy: corev1.PullNever,
						Command:                  []string{"sh", "-c", "wget -O - http://203.0.113.9:8080/ 2>&1 | tee /dev/stderr | grep 'captured 203.0.113.9:8080'"},
						TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
					}},
				},
			},
		},
	}
	if _, err := c.BatchV1().Jobs("default").Create(ctx, job, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var pod *corev1.Pod
	t.Cleanup(func() {
		if t.Failed() && pod != nil {
			t.Logf("the job's pod when the test failed: %+v", pod.Status)
		}
	})
	eventually(t, "the job's pod succeeds", func(ctx context.Context) (bool, error) {
		pods, err := c.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "job-name=meshed"})
		if err != nil || len(pods.Items) == 0 {
			return false, err
		}
		pod = &pods.Items[0]
		if pod.Status.Phase == corev1.PodFailed {
			t.Fatalf("pod failed: %+v", pod.Status)
		}
		return pod.Status.Phase == corev1.PodSucceeded, nil
	})
	var sidecar, app corev1.ContainerStatus
	for _, s := range pod.Status.InitContainerStatuses {
		if s.Name == meshconfig.ContainerName {
			sidecar = s
		}
	}
	for _, s := range pod.Status.ContainerStatuses {
		if s.Name == "app" {
			app = s
		}
	}
	if sidecar.State.Terminated == nil || app.State.Terminated == nil || app.State.Terminated.ExitCode != 0 {
		t.Fatalf("sidecar %+v, app %+v", sidecar.State, app.State)
	}
	// Timestamps have second precision; the stand-in is ready 3 s after it
	// starts.
	if gap := app.State.Terminated.StartedAt.Sub(sidecar.State.Terminated.StartedAt.Time); gap < 2*time.Second {
		t.Errorf("app started %v after the sidecar, before its startup probe could pass", gap)
	}
	eventually(t, "the job completes", func(ctx context.Context) (bool, error) {
		j, err := c.BatchV1().Jobs("default").Get(ctx, "meshed", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return j.Status.Succeeded == 1, nil
	})

	// A long-running meshed pod shows 2/2 once its sidecar is ready.
	web := simplePod("web", corev1.RestartPolicyAlways, "exec sleep 3600")
	web.Labels = map[string]string{meshconfig.InjectAnnotation: "true"}
	web.Spec.NodeName = ""
	web.Spec.TerminationGracePeriodSeconds = new(int64(1)) // sh as PID 1 ignores SIGTERM
	if _, err := c.CoreV1().Pods("default").Create(ctx, web, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "web shows 2/2", func(ctx context.Context) (bool, error) {
		p, err := c.CoreV1().Pods("default").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		cells, err := printers.For(schema.GroupKind{Kind: "Pod"}).Cells(p, time.Now())
		return err == nil && cells[1] == "2/2" && cells[2] == "Running", err
	})

	// A meshed pod with an httpGet readiness probe on a named port
	// becomes Ready through the probe rewrite: the kubelet probes the
	// sidecar's :15020/app-health/app/readyz, which probes the app on
	// loopback. The app's page appears only after a while, so the
	// rewritten probe must first fail, then pass.
	probed := simplePod("probed", corev1.RestartPolicyAlways,
		"mkdir -p /www; (sleep 2; echo ok > /www/ready) & exec httpd -f -p 8080 -h /www")
	probed.Labels = map[string]string{meshconfig.InjectAnnotation: "true"}
	probed.Spec.NodeName = ""
	probed.Spec.TerminationGracePeriodSeconds = new(int64(1))
	app0 := &probed.Spec.Containers[0]
	app0.Name = "app"
	app0.Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}
	app0.ReadinessProbe = &corev1.Probe{
		ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready", Port: intstr.FromString("http")}},
		PeriodSeconds: 1, FailureThreshold: 1,
	}
	created, err := c.CoreV1().Pods("default").Create(ctx, probed, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h := created.Spec.Containers[0].ReadinessProbe.HTTPGet; h == nil || h.Port.IntValue() != meshconfig.StatsPort ||
		h.Path != meshconfig.AppHealthPath("app", meshconfig.ReadinessProbe) {
		t.Fatalf("readiness probe not rewritten: %+v", created.Spec.Containers[0].ReadinessProbe)
	}
	var probers string
	for _, e := range created.Spec.InitContainers[0].Env {
		if e.Name == meshconfig.AppProbersEnv {
			probers = e.Value
		}
	}
	if want := `{"/app-health/app/readyz":{"httpGet":{"path":"/ready","port":8080,"scheme":"HTTP"},"timeoutSeconds":1}}`; probers != want {
		t.Errorf("%s = %s, want %s", meshconfig.AppProbersEnv, probers, want)
	}
	var last *corev1.Pod
	t.Cleanup(func() {
		if t.Failed() && last != nil {
			t.Logf("probed: %+v", last.Status)
			logs, _ := filepath.Glob(filepath.Join(dir, "logs", "default_probed_*", "*", "*.log"))
			for _, l := range logs {
				b, _ := os.ReadFile(l)
				t.Logf("%s:\n%s", l, b)
			}
		}
	})
	eventually(t, "probed becomes Ready through the sidecar", func(ctx context.Context) (bool, error) {
		p, err := c.CoreV1().Pods("default").Get(ctx, "probed", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		last = p
		return isReady(p), nil
	})

	meshDir := filepath.Join(dir, "data", "node", meshconfig.PodsDir, string(pod.UID))
	if _, err := os.Stat(meshDir); err != nil {
		t.Errorf("mesh directory of the finished pod: %v", err)
	}
	zero := int64(0)
	if err := c.CoreV1().Pods("default").Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: &zero}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the mesh directory goes with the pod", func(context.Context) (bool, error) {
		_, err := os.Stat(meshDir)
		return os.IsNotExist(err), nil
	})
}
