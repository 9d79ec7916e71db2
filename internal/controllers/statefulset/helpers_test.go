package statefulset_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"

	"skiff.dev/skiff/internal/controllers/garbagecollector"
	"skiff.dev/skiff/internal/controllers/statefulset"
	"skiff.dev/skiff/internal/testenv"
)

// readyAnnotation on a pod makes the fake kubelet run it Running and
// Ready; pods without it stay Pending, so a test decides when each pod
// becomes Ready by annotating it (on the pod, or on the template for all).
const readyAnnotation = "test.skiff.dev/ready"

func decide(pod *corev1.Pod) testenv.PodOutcome {
	if pod.Annotations[readyAnnotation] == "true" {
		return testenv.Running()
	}
	return testenv.PodOutcome{Skip: true}
}

type cluster struct {
	env    *testenv.Env
	client kubernetes.Interface
	// stop stops the controller startCluster started.
	stop func()
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	env := testenv.Start(t, testenv.WithoutControllers)
	testenv.StartFakeKubelet(t, env.Client, decide)
	cl := &cluster{env: env, client: env.Client}
	cl.stop = cl.startController(t)
	return cl
}

// startController runs a StatefulSet controller on its own informers until
// the returned stop is called or the test ends.
func (cl *cluster) startController(t *testing.T) (stop func()) {
	t.Helper()
	factory := informers.NewSharedInformerFactory(cl.client, 0)
	c := statefulset.New(cl.client, factory, newRecorder(t, cl.client, "statefulset-controller"), testenv.Logger(t), statefulset.Options{})
	return testenv.Run(t, "statefulset controller", func(ctx context.Context) error {
		factory.Start(ctx.Done())
		defer factory.Shutdown()
		return c.Run(ctx, 2)
	})
}

// startGC runs the garbage collector, which retention policies rely on.
func (cl *cluster) startGC(t *testing.T) {
	t.Helper()
	mc, err := metadata.NewForConfig(cl.env.Config)
	if err != nil {
		t.Fatal(err)
	}
	gc := garbagecollector.New(mc, testenv.Logger(t))
	testenv.Run(t, "garbage collector", func(ctx context.Context) error { return gc.Run(ctx, 2) })
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

// newSet is a StatefulSet "web" of image with a claim template "www".
// ready puts the ready annotation on the template.
func newSet(replicas int32, image string, ready bool) *appsv1.StatefulSet {
	labels := map[string]string{"app": "web"}
	tmpl := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{
			Name: "web", Image: image,
			VolumeMounts: []corev1.VolumeMount{{Name: "www", MountPath: "/usr/share/www"}},
		}}},
	}
	if ready {
		tmpl.Annotations = map[string]string{readyAnnotation: "true"}
	}
	return &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.StatefulSetSpec{
			Replicas:    ptr.To(replicas),
			ServiceName: "web",
			Selector:    &metav1.LabelSelector{MatchLabels: labels},
			Template:    tmpl,
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{{
				ObjectMeta: metav1.ObjectMeta{Name: "www"},
				Spec: corev1.PersistentVolumeClaimSpec{
					AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
					Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
				},
			}},
		},
	}
}

func (cl *cluster) createSet(t *testing.T, ns string, set *appsv1.StatefulSet) *appsv1.StatefulSet {
	t.Helper()
	out, err := cl.client.AppsV1().StatefulSets(ns).Create(t.Context(), set, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// patchSet applies a strategic merge patch to the set.
func (cl *cluster) patchSet(t *testing.T, ns, name string, patch any) {
	t.Helper()
	raw, _ := json.Marshal(patch)
	if _, err := cl.client.AppsV1().StatefulSets(ns).Patch(t.Context(), name, types.StrategicMergePatchType, raw, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
}

// makeReady annotates a pod so the fake kubelet makes it Ready.
func (cl *cluster) makeReady(t *testing.T, ns, name string) {
	t.Helper()
	raw, _ := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{readyAnnotation: "true"}}})
	if _, err := cl.client.CoreV1().Pods(ns).Patch(t.Context(), name, types.MergePatchType, raw, metav1.PatchOptions{}); err != nil {
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

func (cl *cluster) pod(ctx context.Context, ns, name string) (*corev1.Pod, error) {
	return cl.client.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
}

func (cl *cluster) set(ctx context.Context, ns string) (*appsv1.StatefulSet, error) {
	return cl.client.AppsV1().StatefulSets(ns).Get(ctx, "web", metav1.GetOptions{})
}

// podLog watches the pods of a namespace and records, in the order the
// server made them, every creation and every deletion, and for each
// creation whether the pod's predecessor was Running and Ready then.
type podLog struct {
	mu      sync.Mutex
	created []string
	deleted []string
	// rv is the resourceVersion each pod was created at.
	rv map[string]string
	// notReadyBefore lists pods created while the pod before them (by
	// ordinal) was not Ready.
	notReadyBefore []string
}

func watchPods(t *testing.T, client kubernetes.Interface, ns string) *podLog {
	t.Helper()
	l := &podLog{rv: map[string]string{}}
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(ns))
	inf := factory.Core().V1().Pods().Informer()
	store := inf.GetStore()
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			pod := obj.(*corev1.Pod)
			l.mu.Lock()
			defer l.mu.Unlock()
			l.created = append(l.created, pod.Name)
			l.rv[pod.Name] = pod.ResourceVersion
			if prev := predecessor(pod.Name); prev != "" {
				p, ok, _ := store.GetByKey(ns + "/" + prev)
				if !ok || !podReady(p.(*corev1.Pod)) {
					l.notReadyBefore = append(l.notReadyBefore, pod.Name)
				}
			}
		},
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			l.mu.Lock()
			defer l.mu.Unlock()
			l.deleted = append(l.deleted, obj.(*corev1.Pod).Name)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	factory.Start(ctx.Done())
	t.Cleanup(func() { cancel(); factory.Shutdown() })
	factory.WaitForCacheSync(ctx.Done())
	return l
}

func (l *podLog) snapshot() (created, deleted, notReadyBefore []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.created...), append([]string(nil), l.deleted...), append([]string(nil), l.notReadyBefore...)
}

func (l *podLog) createdRV(name string) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rv[name]
}

// predecessor is web-(n-1) for web-n, "" for web-0.
func predecessor(name string) string {
	switch name {
	case "web-1":
		return "web-0"
	case "web-2":
		return "web-1"
	case "web-3":
		return "web-2"
	}
	return ""
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return pod.Status.Phase == corev1.PodRunning && c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// eventually polls cond until it holds, failing the test after 30s.
