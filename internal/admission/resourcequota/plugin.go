// Package resourcequota is the ResourceQuota admission plugin, as
// upstream's (k8s.io/apiserver/pkg/admission/plugin/resourcequota): every
// create of a namespaced object, and every update that changes what an
// object charges (a Service's type, a claim's size), is checked against
// the quotas of its namespace — object counts, compute requests and
// limits, storage, scopes — and rejected with upstream's messages when it
// would exceed one. A write that fits is charged at once: the quotas'
// status.used is raised through the API with optimistic concurrency, so
// two concurrent creates cannot both squeeze under a limit (in one server
// a namespace's checks also run one at a time). Dry-run writes are checked
// but charge nothing. The ResourceQuota controller later recomputes
// status.used from the objects themselves and releases what deleted or
// finished objects held.
//
// The plugin reads quotas through an informer on a loopback clientset,
// the way upstream's does. Only the daemon wires it; tests may import it.
package resourcequota

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/clock"

	"skiff.dev/skiff/internal/admission/lookup"
	"skiff.dev/skiff/internal/admission/resourcequota/usage"
	"skiff.dev/skiff/internal/apiserver"
)

// Options tune the plugin.
type Options struct {
	// Clock tells the time pods are judged at (default: the real clock).
	Clock clock.PassiveClock
	// ReadyTimeout is how long a write waits for the quota cache to fill
	// before it is refused (default 10s, as upstream).
	ReadyTimeout time.Duration
	// Retries is how often the charge is retried after a conflict
	// (default 5).
	Retries int
}

// Plugin is the ResourceQuota admission plugin.
type Plugin struct {
	client kubernetes.Interface
	lister corelisters.ResourceQuotaLister
	synced cache.InformerSynced
	log    *slog.Logger
	opts   Options

	mu     sync.Mutex
	locks  map[string]*nsLock               // per namespace: checks run one at a time
	recent map[string]*corev1.ResourceQuota // ns/name → the newest status this plugin wrote
}

type nsLock struct {
	sync.Mutex
	users int
}

var _ apiserver.Validator = (*Plugin)(nil)

// New returns the plugin reading quotas through factory's informer and
// charging them through client. It does no I/O; the caller starts the
// factory.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, log *slog.Logger, opts Options) *Plugin {
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = 10 * time.Second
	}
	if opts.Retries <= 0 {
		opts.Retries = 5
	}
	inf := factory.Core().V1().ResourceQuotas()
	return &Plugin{
		client: client,
		lister: inf.Lister(),
		synced: inf.Informer().HasSynced,
		log:    log.With("component", "admission-resourcequota"),
		opts:   opts,
		locks:  map[string]*nsLock{},
		recent: map[string]*corev1.ResourceQuota{},
	}
}

// HasSynced reports whether the plugin's quota cache has filled.
func (p *Plugin) HasSynced() bool { return p.synced() }

// Validate checks a write against the quotas of its namespace and charges
// it. Subresource writes and cluster-scoped objects are not charged.
func (p *Plugin) Validate(ctx context.Context, a *apiserver.Attributes) error {
	if a.Subresource != "" || a.Namespace == "" || a.Object == nil {
		return nil
	}
	e := usage.For(a.Resource)
	r := request{update: a.Operation == apiserver.Update, obj: a.Object, old: a.OldObject, eval: e, now: p.opts.Clock.Now()}
	if r.update && !e.ChargesUpdates() {
		return nil
	}
	if err := p.waitForReady(ctx); err != nil {
		return err
	}
	if none, err := p.noQuotas(a.Namespace); none || err != nil {
		return err
	}
	if r.update && unchanged(r) {
		return nil
	}
	unlock := p.lock(a.Namespace)
	defer unlock()
	quotas, err := p.quotas(a.Namespace)
	if err != nil || len(quotas) == 0 {
		return err
	}
	var lastErr error
	for attempt := 0; attempt <= p.opts.Retries; attempt++ {
		next, err := check(quotas, r)
		if err != nil {
			return err
		}
		if a.DryRun {
			return nil
		}
		var failed []string
		for i := range next {
			if usage.Equals(quotas[i].Status.Used, next[i].Status.Used) {
				continue
			}
			updated, err := p.client.CoreV1().ResourceQuotas(a.Namespace).UpdateStatus(ctx, &next[i], metav1.UpdateOptions{})
			switch {
			case err == nil:
				p.remember(updated)
			case apierrors.IsConflict(err):
				failed, lastErr = append(failed, next[i].Name), err
			default:
				return err
			}
		}
		if len(failed) == 0 {
			return nil
		}
		// Check again against the current versions of the quotas whose
		// charge conflicted; the others are charged already.
		quotas = quotas[:0]
		for _, name := range failed {
			q, err := p.client.CoreV1().ResourceQuotas(a.Namespace).Get(ctx, name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				continue
			}
			if err != nil {
				return err
			}
			p.remember(q)
			quotas = append(quotas, *q)
		}
		if len(quotas) == 0 {
			return nil // the quotas that conflicted are gone
		}
	}
	return lastErr
}

// unchanged reports whether an update leaves the object's usage as it
// was (it then cannot affect any quota).
func unchanged(r request) bool {
	if r.old == nil {
		return false
	}
	cur, err1 := r.eval.Usage(r.obj, r.now)
	prev, err2 := r.eval.Usage(r.old, r.now)
	return err1 == nil && err2 == nil && usage.Equals(cur, prev)
}

// waitForReady waits for the quota cache, up to ReadyTimeout.
func (p *Plugin) waitForReady(ctx context.Context) error {
	return lookup.WaitForSync(ctx, p.opts.ReadyTimeout, p.synced)
}

// lock serializes the checks of one namespace.
func (p *Plugin) lock(ns string) (unlock func()) {
	p.mu.Lock()
	l := p.locks[ns]
	if l == nil {
		l = &nsLock{}
		p.locks[ns] = l
	}
	l.users++
	p.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		p.mu.Lock()
		if l.users--; l.users == 0 {
			delete(p.locks, ns)
		}
		p.mu.Unlock()
	}
}

// noQuotas reports whether the namespace has no quota (the common case,
// which needs no lock).
func (p *Plugin) noQuotas(ns string) (bool, error) {
	list, err := p.lister.ResourceQuotas(ns).List(labels.Everything())
	if err != nil {
		return false, fmt.Errorf("list resource quotas: %w", err)
	}
	return len(list) == 0, nil
}

// quotas returns the namespace's quotas from the cache, each replaced by
// the version this plugin last wrote when that is newer (the cache may
// not have seen the plugin's own charges yet).
func (p *Plugin) quotas(ns string) ([]corev1.ResourceQuota, error) {
	list, err := p.lister.ResourceQuotas(ns).List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("list resource quotas: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]corev1.ResourceQuota, 0, len(list))
	for _, q := range list {
		key := ns + "/" + q.Name
		if r := p.recent[key]; r != nil && r.UID == q.UID && newer(r.ResourceVersion, q.ResourceVersion) {
			out = append(out, *r.DeepCopy())
			continue
		}
		delete(p.recent, key) // the cache has caught up
		out = append(out, *q.DeepCopy())
	}
	return out, nil
}

// remember keeps q as the newest known version of its quota.
func (p *Plugin) remember(q *corev1.ResourceQuota) {
	key := q.Namespace + "/" + q.Name
	p.mu.Lock()
	defer p.mu.Unlock()
	if cur := p.recent[key]; cur == nil || cur.UID != q.UID || newer(q.ResourceVersion, cur.ResourceVersion) {
		p.recent[key] = q.DeepCopy()
	}
}

// newer compares resource versions (etcd revisions).
func newer(a, b string) bool {
	x, err1 := strconv.ParseInt(a, 10, 64)
	y, err2 := strconv.ParseInt(b, 10, 64)
	return err1 == nil && err2 == nil && x > y
}
