// Package podpreset is the PodPreset admission plugin, as upstream's was
// until Kubernetes 1.20 (plugin/pkg/admission/podpreset): a new pod gets
// the env, envFrom and volume mounts of every PodPreset of its namespace
// whose selector matches it merged into all its containers and init
// containers, and their volumes merged into its spec, with a
// podpreset.admission.kubernetes.io/podpreset-<name> annotation naming
// each preset's resourceVersion. When a preset would conflict with the
// pod (an env var, volume or mount of the same name but different
// content, or two mounts on one path) the pod is admitted unchanged and a
// warning is logged. Pods annotated
// podpreset.admission.kubernetes.io/exclude: "true" and mirror pods are
// left alone.
//
// The plugin reads PodPresets through an informer on a loopback client
// registered on the daemon's informer factory; while the cache has none
// for a namespace it asks the API directly (cached briefly). Only the
// daemon wires it; tests may import it.
package podpreset

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"skiff.dev/skiff/internal/admission/lookup"
	settingsv1alpha1 "skiff.dev/skiff/internal/apis/settings/v1alpha1"
	"skiff.dev/skiff/internal/apiserver"
)

const (
	// AnnotationPrefix starts the annotations the plugin sets and reads.
	AnnotationPrefix = "podpreset.admission.kubernetes.io"
	// ExcludeAnnotation opts a pod out when "true".
	ExcludeAnnotation = AnnotationPrefix + "/exclude"
	// mirrorAnnotation marks a static pod's mirror.
	mirrorAnnotation = corev1.MirrorPodAnnotationKey
)

// Options tune the plugin.
type Options struct {
	// ReadyTimeout is how long a write waits for the cache to fill before
	// it is refused (default 10s).
	ReadyTimeout time.Duration
	// LiveLookupTTL is how long a direct read of a namespace's presets is
	// reused (default 30s).
	LiveLookupTTL time.Duration
}

// Lister lists the PodPresets of a namespace straight from the API.
type Lister interface {
	List(ctx context.Context, namespace string, opts metav1.ListOptions) (*settingsv1alpha1.PodPresetList, error)
}

// Plugin is the PodPreset admission plugin.
type Plugin struct {
	client  Lister
	indexer cache.Indexer
	synced  cache.InformerSynced
	log     *slog.Logger
	opts    Options
	live    *lookup.Live[settingsv1alpha1.PodPreset]
}

var _ apiserver.Mutator = (*Plugin)(nil)

// New returns the plugin. It registers a PodPreset informer (reading
// through client) on factory; the caller starts the factory. It does no
// I/O.
func New(client *settingsv1alpha1.Client, factory informers.SharedInformerFactory, log *slog.Logger, opts Options) *Plugin {
	inf := factory.InformerFor(&settingsv1alpha1.PodPreset{}, func(kubernetes.Interface, time.Duration) cache.SharedIndexInformer {
		return settingsv1alpha1.NewInformer(client, 0)
	})
	return newPlugin(client, inf.GetIndexer(), inf.HasSynced, log, opts)
}

func newPlugin(client Lister, indexer cache.Indexer, synced cache.InformerSynced, log *slog.Logger, opts Options) *Plugin {
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = 10 * time.Second
	}
	if opts.LiveLookupTTL <= 0 {
		opts.LiveLookupTTL = 30 * time.Second
	}
	return &Plugin{
		client: client, indexer: indexer, synced: synced,
		log: log.With("component", "admission-podpreset"), opts: opts,
		live: &lookup.Live[settingsv1alpha1.PodPreset]{TTL: opts.LiveLookupTTL, Now: time.Now},
	}
}

// HasSynced reports whether the plugin's PodPreset cache has filled.
func (p *Plugin) HasSynced() bool { return p.synced() }

// Admit merges the matching presets into a new pod.
func (p *Plugin) Admit(ctx context.Context, a *apiserver.Attributes) error {
	if a.Operation != apiserver.Create || a.Subresource != "" || a.Kind.Group != "" || a.Kind.Kind != "Pod" {
		return nil
	}
	pod, ok := a.Object.(*corev1.Pod)
	if !ok {
		return nil
	}
	if _, mirror := pod.Annotations[mirrorAnnotation]; mirror || pod.Annotations[ExcludeAnnotation] == "true" {
		return nil
	}
	presets, err := p.presets(ctx, a)
	if err != nil {
		return err
	}
	matching, err := Matching(presets, pod)
	if err != nil {
		return apierrors.NewInternalError(fmt.Errorf("filtering pod presets failed: %w", err))
	}
	if len(matching) == 0 {
		return nil
	}
	names := make([]string, len(matching))
	for i, pp := range matching {
		names[i] = pp.Name
	}
	if err := Apply(pod, matching); err != nil {
		p.log.Warn("conflict applying pod presets; the pod is admitted unchanged",
			"namespace", a.Namespace, "pod", podName(pod), "podpresets", strings.Join(names, ","), "err", err)
		return nil
	}
	p.log.Debug("applied pod presets", "namespace", a.Namespace, "pod", podName(pod), "podpresets", strings.Join(names, ","))
	return nil
}

func podName(pod *corev1.Pod) string {
	if pod.Name != "" {
		return pod.Name
	}
	return pod.GenerateName
}

// presets returns the PodPresets of the write's namespace: from the
// cache, or, while the cache has none there, from the API.
func (p *Plugin) presets(ctx context.Context, a *apiserver.Attributes) ([]*settingsv1alpha1.PodPreset, error) {
	if err := lookup.WaitForSync(ctx, p.opts.ReadyTimeout, p.synced); err != nil {
		return nil, apierrors.NewForbidden(a.Resource, a.Name, err)
	}
	objs, err := p.indexer.ByIndex(cache.NamespaceIndex, a.Namespace)
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("listing pod presets failed: %w", err))
	}
	if len(objs) > 0 {
		out := make([]*settingsv1alpha1.PodPreset, 0, len(objs))
		for _, o := range objs {
			if pp, ok := o.(*settingsv1alpha1.PodPreset); ok {
				out = append(out, pp)
			}
		}
		return out, nil
	}
	items, err := p.live.Get(a.Namespace, func() ([]settingsv1alpha1.PodPreset, error) {
		list, err := p.client.List(ctx, a.Namespace, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		return list.Items, nil
	})
	if err != nil {
		return nil, apierrors.NewInternalError(fmt.Errorf("listing pod presets failed: %w", err))
	}
	return items, nil
}

// Matching returns the presets whose selector matches pod, by name.
func Matching(presets []*settingsv1alpha1.PodPreset, pod *corev1.Pod) ([]*settingsv1alpha1.PodPreset, error) {
	var out []*settingsv1alpha1.PodPreset
	for _, pp := range presets {
		sel, err := metav1.LabelSelectorAsSelector(&pp.Spec.Selector)
		if err != nil {
			return nil, fmt.Errorf("label selector conversion failed: %v for selector: %v", pp.Spec.Selector, err)
		}
		if sel.Matches(labels.Set(pod.Labels)) {
			out = append(out, pp)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}
