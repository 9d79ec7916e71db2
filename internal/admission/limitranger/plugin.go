// Package limitranger is the LimitRanger admission plugin, as upstream's
// (plugin/pkg/admission/limitranger): a new pod's containers and init
// containers get the default requests and limits of the LimitRanges of
// its namespace (Admit), and pods and persistent volume claims are
// checked against their min, max and maxLimitRequestRatio (Validate),
// with upstream's messages.
//
// The plugin reads LimitRanges through an informer on a loopback
// clientset, as upstream's does; while the cache has none for a namespace
// it asks the API directly (cached briefly), so a LimitRange applies to
// the pods created right after it. Only the daemon wires it; tests may
// import it.
package limitranger

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"skiff.dev/skiff/internal/admission/lookup"
	"skiff.dev/skiff/internal/apiserver"
)

// Options tune the plugin.
type Options struct {
	// ReadyTimeout is how long a write waits for the cache to fill before
	// it is refused (default 10s, as upstream).
	ReadyTimeout time.Duration
	// LiveLookupTTL is how long a direct read of a namespace's
	// LimitRanges is reused (default 30s, as upstream).
	LiveLookupTTL time.Duration
}

// Plugin is the LimitRanger admission plugin.
type Plugin struct {
	client kubernetes.Interface
	lister corelisters.LimitRangeLister
	synced cache.InformerSynced
	log    *slog.Logger
	opts   Options
	live   *lookup.Live[corev1.LimitRange]
}

var (
	_ apiserver.Mutator   = (*Plugin)(nil)
	_ apiserver.Validator = (*Plugin)(nil)
)

// New returns the plugin reading LimitRanges through factory's informer
// (and client, while the cache has none). It does no I/O; the caller
// starts the factory.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, log *slog.Logger, opts Options) *Plugin {
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = 10 * time.Second
	}
	if opts.LiveLookupTTL <= 0 {
		opts.LiveLookupTTL = 30 * time.Second
	}
	inf := factory.Core().V1().LimitRanges()
	return &Plugin{
		client: client,
		lister: inf.Lister(),
		synced: inf.Informer().HasSynced,
		log:    log.With("component", "admission-limitranger"),
		opts:   opts,
		live:   &lookup.Live[corev1.LimitRange]{TTL: opts.LiveLookupTTL, Now: time.Now},
	}
}

// HasSynced reports whether the plugin's LimitRange cache has filled.
func (p *Plugin) HasSynced() bool { return p.synced() }

// Admit sets default requests and limits on a new pod's containers.
func (p *Plugin) Admit(ctx context.Context, a *apiserver.Attributes) error {
	return p.run(ctx, a, mutate)
}

// Validate checks a pod or claim against min, max and ratio limits.
func (p *Plugin) Validate(ctx context.Context, a *apiserver.Attributes) error {
	return p.run(ctx, a, validate)
}

func (p *Plugin) run(ctx context.Context, a *apiserver.Attributes, fn func(*corev1.LimitRange, any) error) error {
	if !supports(a) {
		return nil
	}
	if a.OldObject != nil {
		if m, err := metaOf(a.OldObject); err == nil && m.GetDeletionTimestamp() != nil {
			return nil
		}
	}
	items, err := p.limitRanges(ctx, a)
	if err != nil {
		return err
	}
	for _, lr := range items {
		if err := fn(lr, a.Object); err != nil {
			return apierrors.NewForbidden(a.Resource, nameOf(a), err)
		}
	}
	return nil
}

// mutate and validate apply one LimitRange to the written object: a pod
// or a claim.
func mutate(lr *corev1.LimitRange, obj any) error {
	if pod, ok := obj.(*corev1.Pod); ok {
		PodDefaults(lr, pod)
	}
	return nil
}

func validate(lr *corev1.LimitRange, obj any) error {
	switch o := obj.(type) {
	case *corev1.Pod:
		return ValidatePod(lr, o)
	case *corev1.PersistentVolumeClaim:
		return ValidateClaim(lr, o)
	}
	return nil
}

// supports: pods on create, claims on create and update; never
// subresources. Containers are immutable, so pod updates are not judged.
func supports(a *apiserver.Attributes) bool {
	if a.Subresource != "" || a.Kind.Group != "" {
		return false
	}
	switch a.Kind.Kind {
	case "Pod":
		return a.Operation == apiserver.Create
	case "PersistentVolumeClaim":
		return true
	}
	return false
}

func nameOf(a *apiserver.Attributes) string {
	if a.Name != "" {
		return a.Name
	}
	if m, err := metaOf(a.Object); err == nil && m.GetGenerateName() != "" {
		return m.GetGenerateName()
	}
	return "Unknown"
}

// limitRanges returns the LimitRanges of the write's namespace: from the
// cache, or, while the cache has none there, from the API.
func (p *Plugin) limitRanges(ctx context.Context, a *apiserver.Attributes) ([]*corev1.LimitRange, error) {
	if err := lookup.WaitForSync(ctx, p.opts.ReadyTimeout, p.synced); err != nil {
		return nil, apierrors.NewForbidden(a.Resource, nameOf(a), err)
	}
	items, err := p.lister.LimitRanges(a.Namespace).List(labels.Everything())
	if err != nil {
		return nil, apierrors.NewForbidden(a.Resource, nameOf(a),
			fmt.Errorf("unable to %s %v at this time because there was an error enforcing limit ranges", a.Operation, a.Resource))
	}
	if len(items) > 0 {
		return items, nil
	}
	items, err = p.live.Get(a.Namespace, func() ([]corev1.LimitRange, error) {
		list, err := p.client.CoreV1().LimitRanges(a.Namespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, err
		}
		return list.Items, nil
	})
	if err != nil {
		return nil, apierrors.NewForbidden(a.Resource, nameOf(a), err)
	}
	return items, nil
}
