package resourcequota_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"skiff.dev/skiff/internal/admission/resourcequota/usage"
	"skiff.dev/skiff/internal/controllers/resourcequota"
	"skiff.dev/skiff/internal/testenv"
)

type cluster struct {
	env    *testenv.Env
	client kubernetes.Interface
}

// startCluster runs an API server (admission always on) and the quota
// controller.
func startCluster(t *testing.T) *cluster {
	t.Helper()
	env := testenv.Start(t, testenv.WithoutControllers)
	factory := informers.NewSharedInformerFactory(env.Client, 0)
	c := resourcequota.New(env.Client, factory, nil, testenv.Logger(t), resourcequota.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); factory.Shutdown() }) // after the controller stops
	factory.Start(ctx.Done())
	testenv.Run(t, "resourcequota", func(ctx context.Context) error { return c.Run(ctx, 2) })
	return &cluster{env: env, client: env.Client}
}

func (cl *cluster) namespace(t *testing.T, name string) string {
	t.Helper()
	if _, err := cl.client.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return name
}

func rl(kv ...string) corev1.ResourceList {
	out := corev1.ResourceList{}
	for i := 0; i+1 < len(kv); i += 2 {
		out[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return out
}

// createQuota creates a quota and waits until the controller has filled
// its status (admission enforces it from then on).
func (cl *cluster) createQuota(t *testing.T, ns, name string, hard corev1.ResourceList, scopes ...corev1.ResourceQuotaScope) {
	t.Helper()
	q := &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.ResourceQuotaSpec{Hard: hard, Scopes: scopes}}
	if _, err := cl.client.CoreV1().ResourceQuotas(ns).Create(t.Context(), q, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "quota "+name+" has a status", func(ctx context.Context) (bool, error) {
		q, err := cl.client.CoreV1().ResourceQuotas(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		return usage.Equals(q.Status.Hard, hard) && len(q.Status.Used) == len(hard), nil
	})
}

// waitUsed waits until the quota's status.used reads want.
func (cl *cluster) waitUsed(t *testing.T, ns, name, want string) {
	t.Helper()
	testenv.Eventually(t, fmt.Sprintf("quota %s uses %s", name, want), func(ctx context.Context) (bool, error) {
		q, err := cl.client.CoreV1().ResourceQuotas(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if got := usage.String(q.Status.Used); got != want {
			return false, fmt.Errorf("used %s", got)
		}
		return true, nil
	})
}

func (cl *cluster) used(t *testing.T, ns, name string) string {
	t.Helper()
	q, err := cl.client.CoreV1().ResourceQuotas(ns).Get(t.Context(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return usage.String(q.Status.Used)
}

func newPod(name string, requests, limits corev1.ResourceList) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PodSpec{Containers: []corev1.Container{
		{Name: "c", Image: "busybox", Resources: corev1.ResourceRequirements{Requests: requests, Limits: limits}}}}}
}

func TestPodCount(t *testing.T) {
	cl := startCluster(t)
	ns := cl.namespace(t, "count")
	ctx := t.Context()
	pods := cl.client.CoreV1().Pods(ns)
	cl.createQuota(t, ns, "q", rl("pods", "2"))

	for _, name := range []string{"a", "b"} {
		if _, err := pods.Create(ctx, newPod(name, nil, nil), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// Admission charged both at once.
	if got := cl.used(t, ns, "q"); got != "pods=2" {
		t.Errorf("used %s after two creates, want pods=2", got)
	}
	_, err := pods.Create(ctx, newPod("c", nil, nil), metav1.CreateOptions{})
	const want = `pods "c" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2`
	if !apierrors.IsForbidden(err) || err.Error() != want {
		t.Fatalf("third pod: %v\nwant 403 %s", err, want)
	}

	// A dry run is checked but charges nothing.
	if err := pods.Delete(ctx, "a", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	cl.waitUsed(t, ns, "q", "pods=1")
	if _, err := pods.Create(ctx, newPod("dry", nil, nil), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Fatal(err)
	}
	if got := cl.used(t, ns, "q"); got != "pods=1" {
		t.Errorf("dry run charged: used %s", got)
	}

	// The freed slot takes a new pod; a finished pod frees its slot too.
	if _, err := pods.Create(ctx, newPod("c", nil, nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	b, err := pods.Get(ctx, "b", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b.Status.Phase = corev1.PodSucceeded
	if _, err := pods.UpdateStatus(ctx, b, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	cl.waitUsed(t, ns, "q", "pods=1")
}

func TestConcurrentCreatesNeverExceed(t *testing.T) {
	cl := startCluster(t)
	ns := cl.namespace(t, "race")
	cl.createQuota(t, ns, "q", rl("pods", "5", "count/configmaps", "3"))
	var created, refused atomic.Int32
	var wg sync.WaitGroup
	for i := range 24 {
		wg.Go(func() {
			_, err := cl.client.CoreV1().Pods(ns).Create(context.Background(), newPod(fmt.Sprintf("p%d", i), nil, nil), metav1.CreateOptions{})
			switch {
			case err == nil:
				created.Add(1)
			case apierrors.IsForbidden(err) && strings.Contains(err.Error(), "exceeded quota: q"):
				refused.Add(1)
			default:
				t.Errorf("create p%d: %v", i, err)
			}
		})
		wg.Go(func() {
			cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm%d", i)}}
			cl.client.CoreV1().ConfigMaps(ns).Create(context.Background(), cm, metav1.CreateOptions{})
		})
	}
	wg.Wait()
	if created.Load() != 5 || refused.Load() != 19 {
		t.Errorf("%d pods created, %d refused; want 5 and 19", created.Load(), refused.Load())
	}
	list, err := cl.client.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cms, err := cl.client.CoreV1().ConfigMaps(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 5 || len(cms.Items) != 3 {
		t.Errorf("%d pods and %d config maps stored, want 5 and 3", len(list.Items), len(cms.Items))
	}
	if got := cl.used(t, ns, "q"); got != "count/configmaps=3,pods=5" {
		t.Errorf("used %s", got)
	}
}

func TestCompute(t *testing.T) {
	cl := startCluster(t)
	ns := cl.namespace(t, "compute")
	ctx := t.Context()
	pods := cl.client.CoreV1().Pods(ns)
	cl.createQuota(t, ns, "compute", rl("requests.cpu", "1", "requests.memory", "1Gi", "limits.cpu", "2", "limits.memory", "2Gi"))
	cl.createQuota(t, ns, "best-effort", rl("pods", "1"), corev1.ResourceQuotaScopeBestEffort)

	_, err := pods.Create(ctx, newPod("nolimits", rl("cpu", "100m", "memory", "64Mi"), nil), metav1.CreateOptions{})
	if want := `pods "nolimits" is forbidden: failed quota: compute: must specify limits.cpu for: c; limits.memory for: c`; err == nil || err.Error() != want {
		t.Fatalf("pod without limits: %v\nwant %s", err, want)
	}
	if _, err := pods.Create(ctx, newPod("a", rl("cpu", "600m", "memory", "512Mi"), rl("cpu", "1", "memory", "1Gi")), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = pods.Create(ctx, newPod("b", rl("cpu", "600m", "memory", "256Mi"), rl("cpu", "1", "memory", "1Gi")), metav1.CreateOptions{})
	if want := `pods "b" is forbidden: exceeded quota: compute, requested: requests.cpu=600m, used: requests.cpu=600m, limited: requests.cpu=1`; err == nil || err.Error() != want {
		t.Fatalf("second pod: %v\nwant %s", err, want)
	}
	// The BestEffort quota only sees best-effort pods, which the compute
	// quota (which requires limits) would refuse anyway.
	if got := cl.used(t, ns, "best-effort"); got != "pods=0" {
		t.Errorf("best-effort quota used %s", got)
	}
	cl.waitUsed(t, ns, "compute", "limits.cpu=1,limits.memory=1Gi,requests.cpu=600m,requests.memory=512Mi")

	// Raising the limit is picked up by the controller.
	q, err := cl.client.CoreV1().ResourceQuotas(ns).Get(ctx, "compute", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	q.Spec.Hard[corev1.ResourceRequestsCPU] = resource.MustParse("2")
	if _, err := cl.client.CoreV1().ResourceQuotas(ns).Update(ctx, q, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "status.hard follows spec", func(ctx context.Context) (bool, error) {
		q, err := cl.client.CoreV1().ResourceQuotas(ns).Get(ctx, "compute", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		v := q.Status.Hard[corev1.ResourceRequestsCPU]
		return v.String() == "2", nil
	})
	if _, err := pods.Create(ctx, newPod("b", rl("cpu", "600m", "memory", "256Mi"), rl("cpu", "1", "memory", "1Gi")), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

func TestObjectCounts(t *testing.T) {
	cl := startCluster(t)
	ns := cl.namespace(t, "objects")
	ctx := t.Context()
	cl.createQuota(t, ns, "q", rl("count/deployments.apps", "1", "services", "2", "services.nodeports", "1", "secrets", "5", "replicationcontrollers", "1"))
	cl.waitUsed(t, ns, "q", "count/deployments.apps=0,replicationcontrollers=0,secrets=0,services=0,services.nodeports=0")

	deploy := func(name string) *appsv1.Deployment {
		labels := map[string]string{"app": name}
		return &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To[int32](0), Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}}}
	}
	if _, err := cl.client.AppsV1().Deployments(ns).Create(ctx, deploy("one"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err := cl.client.AppsV1().Deployments(ns).Create(ctx, deploy("two"), metav1.CreateOptions{})
	if want := `deployments.apps "two" is forbidden: exceeded quota: q, requested: count/deployments.apps=1, used: count/deployments.apps=1, limited: count/deployments.apps=1`; err == nil || err.Error() != want {
		t.Fatalf("second deployment: %v\nwant %s", err, want)
	}

	svc := func(name string, typ corev1.ServiceType) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.ServiceSpec{Type: typ, Ports: []corev1.ServicePort{{Port: 80}}}}
	}
	if _, err := cl.client.CoreV1().Services(ns).Create(ctx, svc("np", corev1.ServiceTypeNodePort), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = cl.client.CoreV1().Services(ns).Create(ctx, svc("np2", corev1.ServiceTypeNodePort), metav1.CreateOptions{})
	if err == nil || !strings.Contains(err.Error(), "exceeded quota: q, requested: services.nodeports=1, used: services.nodeports=1, limited: services.nodeports=1") {
		t.Fatalf("second NodePort service: %v", err)
	}
	// Turning a ClusterIP service into a NodePort one is charged too.
	cip, err := cl.client.CoreV1().Services(ns).Create(ctx, svc("cip", corev1.ServiceTypeClusterIP), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cip.Spec.Type = corev1.ServiceTypeNodePort
	if _, err := cl.client.CoreV1().Services(ns).Update(ctx, cip, metav1.UpdateOptions{}); err == nil || !apierrors.IsForbidden(err) {
		t.Fatalf("update to NodePort: %v, want forbidden", err)
	}

	// Deletes give quota back.
	if err := cl.client.AppsV1().Deployments(ns).Delete(ctx, "one", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := cl.client.CoreV1().Services(ns).Delete(ctx, "np", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	cl.waitUsed(t, ns, "q", "count/deployments.apps=0,replicationcontrollers=0,secrets=0,services=1,services.nodeports=0")
	if _, err := cl.client.AppsV1().Deployments(ns).Create(ctx, deploy("two"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// TestKubectl creates and describes a quota with the embedded kubectl.
func TestKubectl(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: builds the skiff binary")
	}
	kubectl := filepath.Join(filepath.Dir(testenv.Binary(t)), "kubectl")
	cl := startCluster(t)
	ns := cl.namespace(t, "cli")
	run := func(args ...string) (string, error) {
		cmd := exec.CommandContext(t.Context(), kubectl, append([]string{"-n", ns}, args...)...)
		cmd.Env = append(os.Environ(), "KUBECONFIG="+cl.env.Kubeconfig)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run("create", "quota", "small", "--hard=pods=1,configmaps=2"); err != nil {
		t.Fatalf("kubectl create quota: %v\n%s", err, out)
	}
	cl.waitUsed(t, ns, "small", "configmaps=0,pods=0")
	if out, err := run("run", "one", "--image=busybox"); err != nil {
		t.Fatalf("kubectl run: %v\n%s", err, out)
	}
	out, err := run("run", "two", "--image=busybox")
	if err == nil || !strings.Contains(out, `pods "two" is forbidden: exceeded quota: small, requested: pods=1, used: pods=1, limited: pods=1`) {
		t.Errorf("kubectl run over quota: %v\n%s", err, out)
	}
	out, err = run("describe", "quota", "small")
	if err != nil {
		t.Fatalf("kubectl describe quota: %v\n%s", err, out)
	}
	words := strings.Join(strings.Fields(out), " ")
	for _, want := range []string{"Name: small", "Resource Used Hard", "configmaps 0 2", "pods 1 1"} {
		if !strings.Contains(words, want) {
			t.Errorf("kubectl describe quota lacks %q:\n%s", want, out)
		}
	}
	if out, err = run("get", "quota"); err != nil || !strings.Contains(out, "pods: 1/1") {
		t.Errorf("kubectl get quota: %v\n%s", err, out)
	}
}
