package daemonset_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"skiff.dev/skiff/internal/controllers/daemonset"
	"skiff.dev/skiff/internal/testenv"
)

// delayAnnotation on a pod template delays the fake kubelet's status.
const delayAnnotation = "test.skiff.dev/delay"

func decide(pod *corev1.Pod) testenv.PodOutcome {
	out := testenv.Running()
	if d, err := time.ParseDuration(pod.Annotations[delayAnnotation]); err == nil {
		out.Delay = d
	}
	return out
}

type cluster struct {
	env    *testenv.Env
	client kubernetes.Interface
}

// startCluster starts an API server, a fake kubelet that runs pods as
// outcome says (nil: as decide says) and the controller.
func startCluster(t *testing.T, outcome ...func(*corev1.Pod) testenv.PodOutcome) *cluster {
	t.Helper()
	env := testenv.Start(t, testenv.WithoutControllers)
	kubelet := decide
	if len(outcome) > 0 {
		kubelet = outcome[0]
	}
	testenv.StartFakeKubelet(t, env.Client, kubelet)
	cl := &cluster{env: env, client: env.Client}
	factory := informers.NewSharedInformerFactory(cl.client, 0)
	c := daemonset.New(cl.client, factory, newRecorder(t, cl.client, "daemonset-controller"), testenv.Logger(t),
		daemonset.Options{FailedPodBackoff: 10 * time.Millisecond})
	testenv.Run(t, "daemonset controller", func(ctx context.Context) error {
		factory.Start(ctx.Done())
		defer factory.Shutdown()
		return c.Run(ctx, 2)
	})
	return cl
}

func newRecorder(t *testing.T, client kubernetes.Interface, component string) record.EventRecorder {
	b := record.NewBroadcaster()
	b.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: client.CoreV1().Events("")})
	t.Cleanup(b.Shutdown)
	return b.NewRecorder(scheme.Scheme, corev1.EventSource{Component: component})
}

func (cl *cluster) namespace(t *testing.T, name string) string {
	t.Helper()
	if _, err := cl.client.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return name
}

func (cl *cluster) node(t *testing.T, name string, labels map[string]string, taints ...corev1.Taint) {
	t.Helper()
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}, Spec: corev1.NodeSpec{Taints: taints}}
	if _, err := cl.client.CoreV1().Nodes().Create(t.Context(), node, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// patchNode applies a strategic merge patch to a node.
func (cl *cluster) patchNode(t *testing.T, name string, patch any) {
	t.Helper()
	raw, _ := json.Marshal(patch)
	if _, err := cl.client.CoreV1().Nodes().Patch(t.Context(), name, types.StrategicMergePatchType, raw, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

func (cl *cluster) patchSet(t *testing.T, ns, name string, patch any) {
	t.Helper()
	raw, _ := json.Marshal(patch)
	if _, err := cl.client.AppsV1().DaemonSets(ns).Patch(t.Context(), name, types.StrategicMergePatchType, raw, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// kubectl runs the real kubectl against the cluster.
func (cl *cluster) kubectl(t *testing.T, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), filepath.Join(filepath.Dir(testenv.Binary(t)), "kubectl"), args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+cl.env.Kubeconfig)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// newSet is a DaemonSet "agent" of image.
func newSet(name, image string) *appsv1.DaemonSet {
	labels := map[string]string{"app": name}
	return &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "agent", Image: image}}},
			},
		},
	}
}

func (cl *cluster) createSet(t *testing.T, ns string, ds *appsv1.DaemonSet) {
	t.Helper()
	if _, err := cl.client.AppsV1().DaemonSets(ns).Create(t.Context(), ds, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// podsByNode lists the live pods of ns by node, as "image" strings.
func (cl *cluster) podsByNode(ctx context.Context, ns string) (map[string][]string, error) {
	pods, err := cl.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil {
			out[p.Spec.NodeName] = append(out[p.Spec.NodeName], p.Spec.Containers[0].Image)
		}
	}
	return out, nil
}

// nodeWatch follows the pods of a namespace and records the most nodes
// (among nodes) that were at once without a Ready pod, and the most pods
// a node had at once.
type nodeWatch struct {
	mu             sync.Mutex
	nodes          []string
	maxUnavailable int
	maxPerNode     int
}

func watchNodes(t *testing.T, client kubernetes.Interface, ns string, nodes ...string) *nodeWatch {
	t.Helper()
	w := &nodeWatch{nodes: nodes}
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(ns))
	inf := factory.Core().V1().Pods().Informer()
	store := inf.GetStore()
	check := func(any) {
		w.mu.Lock()
		defer w.mu.Unlock()
		ready, count := map[string]bool{}, map[string]int{}
		for _, obj := range store.List() {
			pod := obj.(*corev1.Pod)
			count[pod.Spec.NodeName]++
			if pod.DeletionTimestamp == nil && podReady(pod) {
				ready[pod.Spec.NodeName] = true
			}
		}
		unavailable := 0
		for _, n := range w.nodes {
			if !ready[n] {
				unavailable++
			}
			w.maxPerNode = max(w.maxPerNode, count[n])
		}
		w.maxUnavailable = max(w.maxUnavailable, unavailable)
	}
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: check, UpdateFunc: func(_, o any) { check(o) }, DeleteFunc: check,
	}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	factory.Start(ctx.Done())
	t.Cleanup(func() { cancel(); factory.Shutdown() })
	factory.WaitForCacheSync(ctx.Done())
	return w
}

func (w *nodeWatch) get() (maxUnavailable, maxPerNode int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.maxUnavailable, w.maxPerNode
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
