// Package meshinject is Skiff's sidecar injector, the job of Istio's
// sidecar-injector webhook done as an admission plugin: a new pod that
// asks for the mesh gets the istio-proxy sidecar as a native sidecar (an
// init container with restartPolicy Always, first among the init
// containers so that the others are in the mesh too), a volume for the
// node's mesh directory, and the sidecar.istio.io/status annotation.
//
// Which pods: as Istio's default policy, a pod is injected when its
// namespace is labelled istio-injection=enabled or the pod itself carries
// sidecar.istio.io/inject="true" (label first, then annotation), unless
// the pod says "false", its namespace says istio-injection=disabled, it
// uses the host's network, it is a static pod's mirror, or it lives in
// kube-system or kube-public.
// A pod already injected (it has the status annotation or a container
// named istio-proxy) is left alone.
//
// The mesh directory: the Pod API has no volume type for "the node's
// directory for this pod", and a hostPath would need the node's data
// directory at admission and is a privileged volume. So the sidecar gets
// an emptyDir named meshconfig.VolumeName mounted at meshconfig.MountPath;
// the node agent recognises it on injected pods and backs it with
// <node data dir>/mesh/pods/<pod UID>/, where the node's mesh server puts
// its socket. On a node without a mesh it is an ordinary empty directory.
//
// The plugin reads namespaces through an informer on a loopback
// clientset; a namespace its cache does not hold yet is read directly.
// Only the daemon wires it; tests may import it.
package meshinject

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"skiff.dev/skiff/internal/admission/lookup"
	"skiff.dev/skiff/internal/apiserver"
	"skiff.dev/skiff/internal/mesh/meshconfig"
)

// Options tune the plugin.
type Options struct {
	// ReadyTimeout is how long a write waits for the namespace cache to
	// fill before it is refused (default 10s).
	ReadyTimeout time.Duration
}

// NamespaceGetter reads one namespace straight from the API.
type NamespaceGetter interface {
	Get(ctx context.Context, name string, opts metav1.GetOptions) (*corev1.Namespace, error)
}

// Plugin is the sidecar injector.
type Plugin struct {
	client NamespaceGetter
	lister corelisters.NamespaceLister
	synced cache.InformerSynced
	log    *slog.Logger
	opts   Options
}

var _ apiserver.Mutator = (*Plugin)(nil)

// New returns the plugin. It registers a Namespace informer on factory;
// the caller starts the factory. It does no I/O.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, log *slog.Logger, opts Options) *Plugin {
	inf := factory.Core().V1().Namespaces()
	return newPlugin(client.CoreV1().Namespaces(), inf.Lister(), inf.Informer().HasSynced, log, opts)
}

func newPlugin(client NamespaceGetter, lister corelisters.NamespaceLister, synced cache.InformerSynced, log *slog.Logger, opts Options) *Plugin {
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = 10 * time.Second
	}
	return &Plugin{client: client, lister: lister, synced: synced, log: log.With("component", "admission-meshinject"), opts: opts}
}

// Admit injects the sidecar into a new pod that asks for it.
func (p *Plugin) Admit(ctx context.Context, a *apiserver.Attributes) error {
	if a.Operation != apiserver.Create || a.Subresource != "" || a.Kind.Group != "" || a.Kind.Kind != "Pod" {
		return nil
	}
	pod, ok := a.Object.(*corev1.Pod)
	if !ok || !podMayWant(pod, a.Namespace) {
		return nil
	}
	nsLabels, err := p.namespaceLabels(ctx, a.Namespace)
	if err != nil {
		return err
	}
	if !Wanted(pod, a.Namespace, nsLabels) {
		return nil
	}
	Inject(pod)
	p.log.Debug("sidecar injected", "pod", a.Namespace+"/"+pod.Name+pod.GenerateName)
	return nil
}

// podMayWant answers what the pod alone decides, so that most pods need
// no namespace read.
func podMayWant(pod *corev1.Pod, namespace string) bool {
	_, mirror := pod.Annotations[corev1.MirrorPodAnnotationKey]
	return !mirror && !Injected(pod) && !pod.Spec.HostNetwork && !ignoredNamespaces[namespace] && podChoice(pod) != "false"
}

// namespaceLabels reads the labels of the pod's namespace: from the cache,
// else from the API (a namespace created just before the pod).
func (p *Plugin) namespaceLabels(ctx context.Context, name string) (map[string]string, error) {
	if err := lookup.WaitForSync(ctx, p.opts.ReadyTimeout, p.synced); err != nil {
		return nil, apierrors.NewServiceUnavailable(err.Error())
	}
	ns, err := p.lister.Get(name)
	if err == nil {
		return ns.Labels, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, err
	}
	ns, err = p.client.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil // the namespace check rejects the pod later
	}
	if err != nil {
		return nil, fmt.Errorf("reading namespace %s: %w", name, err)
	}
	return ns.Labels, nil
}

// ignoredNamespaces never get sidecars, as Istio's injector.
var ignoredNamespaces = map[string]bool{metav1.NamespaceSystem: true, metav1.NamespacePublic: true}

// podChoice is the pod's own sidecar.istio.io/inject: the label, else the
// annotation ("" when it has neither).
func podChoice(pod *corev1.Pod) string {
	if v, ok := pod.Labels[meshconfig.InjectAnnotation]; ok {
		return v
	}
	return pod.Annotations[meshconfig.InjectAnnotation]
}

// Wanted reports whether pod, in a namespace with nsLabels, gets a
// sidecar.
func Wanted(pod *corev1.Pod, namespace string, nsLabels map[string]string) bool {
	if !podMayWant(pod, namespace) || nsLabels[meshconfig.InjectionLabel] == "disabled" {
		return false
	}
	return nsLabels[meshconfig.InjectionLabel] == "enabled" || podChoice(pod) == "true"
}

// Injected reports whether pod already has a sidecar.
func Injected(pod *corev1.Pod) bool {
	if _, ok := pod.Annotations[meshconfig.StatusAnnotation]; ok {
		return true
	}
	for _, list := range [][]corev1.Container{pod.Spec.InitContainers, pod.Spec.Containers} {
		for _, c := range list {
			if c.Name == meshconfig.ContainerName {
				return true
			}
		}
	}
	return false
}

// Status is the sidecar.istio.io/status annotation's content, as Istio's.
type Status struct {
	InitContainers   []string `json:"initContainers"`
	Containers       []string `json:"containers"`
	Volumes          []string `json:"volumes"`
	ImagePullSecrets []string `json:"imagePullSecrets"`
	Revision         string   `json:"revision"`
}

// Prometheus annotations Istio sets so that a scraper finds the sidecar's
// merged metrics.
var prometheusAnnotations = [][2]string{
	{"prometheus.io/scrape", "true"},
	{"prometheus.io/port", fmt.Sprint(meshconfig.StatsPort)},
	{"prometheus.io/path", "/stats/prometheus"},
}

// Inject adds the sidecar, its volume and the status annotation to pod.
// The caller has checked Wanted.
// App containers' httpGet and tcpSocket probes are rewritten to go
// through the sidecar (probes.go).
func Inject(pod *corev1.Pod) {
	sc := Sidecar()
	if probers := rewriteProbes(pod); probers != nil {
		sc.Env = append(sc.Env, appProbersEnv(probers))
	}
	pod.Spec.InitContainers = append([]corev1.Container{sc}, pod.Spec.InitContainers...)
	pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{
		Name: meshconfig.VolumeName, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}},
	})
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	if _, ok := pod.Annotations[prometheusAnnotations[0][0]]; !ok {
		for _, kv := range prometheusAnnotations {
			pod.Annotations[kv[0]] = kv[1]
		}
	}
	status, _ := json.Marshal(Status{
		InitContainers: []string{meshconfig.ContainerName},
		Containers:     []string{},
		Volumes:        []string{meshconfig.VolumeName},
		Revision:       "default",
	})
	pod.Annotations[meshconfig.StatusAnnotation] = string(status)
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	// Istio marks injected pods so that telemetry and policy can select
	// them.
	if _, ok := pod.Labels["security.istio.io/tlsMode"]; !ok {
		pod.Labels["security.istio.io/tlsMode"] = "istio"
	}
}
