// Package identity gives a node's pods their mesh identities: for each
// pod a private key generated on the node (it never leaves it), a
// CertificateSigningRequest to the server's mesh signer (signer
// skiff.dev/mesh-workload, the pod named by annotations; see
// internal/mesh/ca), the signed certificate, and the trusted mesh roots
// from the namespace's ConfigMap istio-ca-root-cert. Certificates are
// renewed at a jittered 50–80% of their lifetime; a renewal, or a change
// of the roots, is announced on Rotated. Pods that are gone are
// forgotten.
//
// The node's mesh server (internal/mesh/control) uses a Manager; the
// daemon builds it.
package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"skiff.dev/skiff/internal/errdefs"
	"skiff.dev/skiff/internal/mesh/ca"
	"skiff.dev/skiff/internal/mesh/proxy"
)

// Options configure a Manager.
type Options struct {
	// NodeName is the node the pods run on (for logs).
	NodeName string
	// TrustDomain of the pods' SPIFFE IDs (default cluster.local).
	TrustDomain string
	// Lifetime asks the signer for certificates this long (at least 10
	// minutes, as upstream requires); zero takes the signer's default.
	Lifetime time.Duration
	// RetryInterval is the first wait before retrying a failed renewal
	// (default 1s; doubled up to a minute).
	RetryInterval time.Duration
}

// Manager issues, caches and renews the identities of a node's pods.
type Manager struct {
	client kubernetes.Interface
	log    *slog.Logger
	opts   Options

	pods       corelisters.PodLister
	configMaps corelisters.ConfigMapLister
	synced     []cache.InformerSynced

	mu      sync.Mutex
	entries map[types.UID]*entry
	pending map[types.UID]bool // rotated, not yet delivered
	changed chan struct{}      // entries' renewal times or pending changed
	rotated chan types.UID
}

// entry is one pod's identity, or its issuance under way.
type entry struct {
	pod      podRef
	id       *proxy.Identity
	notAfter time.Time
	renewAt  time.Time
	failures int
	issuing  chan struct{} // closed when an issuance ends; nil when none runs
}

type podRef struct {
	namespace, name, serviceAccount string
	uid                             types.UID
}

func refOf(pod *corev1.Pod) podRef {
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	return podRef{namespace: pod.Namespace, name: pod.Name, serviceAccount: sa, uid: pod.UID}
}

// New returns a Manager requesting certificates through client; it
// watches pods (to forget the gone) and ConfigMaps (the roots) through
// factory. It does no I/O.
func New(client kubernetes.Interface, factory informers.SharedInformerFactory, log *slog.Logger, opts Options) *Manager {
	if opts.TrustDomain == "" {
		opts.TrustDomain = ca.DefaultTrustDomain
	}
	if opts.RetryInterval <= 0 {
		opts.RetryInterval = time.Second
	}
	podInf := factory.Core().V1().Pods()
	cmInf := factory.Core().V1().ConfigMaps()
	m := &Manager{
		client:     client,
		log:        log.With("component", "mesh-identity", "node", opts.NodeName),
		opts:       opts,
		pods:       podInf.Lister(),
		configMaps: cmInf.Lister(),
		synced:     []cache.InformerSynced{podInf.Informer().HasSynced, cmInf.Informer().HasSynced},
		entries:    map[types.UID]*entry{},
		pending:    map[types.UID]bool{},
		changed:    make(chan struct{}, 1),
		rotated:    make(chan types.UID),
	}
	_, _ = podInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		DeleteFunc: func(obj any) {
			if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = t.Obj
			}
			if pod, ok := obj.(*corev1.Pod); ok {
				m.forget(pod.UID)
			}
		},
	})
	onRoots := func(obj any) {
		if cm, ok := obj.(*corev1.ConfigMap); ok && cm.Name == ca.RootsConfigMap {
			m.rootsChanged(cm.Namespace, []byte(cm.Data[ca.RootsKey]))
		}
	}
	_, _ = cmInf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    onRoots,
		UpdateFunc: func(_, cur any) { onRoots(cur) },
	})
	return m
}

// Rotated delivers the UID of each pod whose identity was renewed (or
// whose roots changed) since its last Identity; the caller calls
// Identity again for the new one. Repeated rotations before delivery
// coalesce.
func (m *Manager) Rotated() <-chan types.UID { return m.rotated }

// Identity returns pod's identity, issuing it first when the node holds
// none (or only an expired one) for it.
func (m *Manager) Identity(ctx context.Context, pod *corev1.Pod) (*proxy.Identity, error) {
	if pod == nil || pod.UID == "" || pod.Namespace == "" || pod.Name == "" {
		return nil, fmt.Errorf("mesh identity: a pod with a namespace, name and UID is required: %w", errdefs.ErrInvalid)
	}
	for {
		m.mu.Lock()
		e := m.entries[pod.UID]
		if e == nil {
			e = &entry{pod: refOf(pod)}
			m.entries[pod.UID] = e
		}
		if e.id != nil && time.Now().Before(e.notAfter) {
			id := *e.id
			m.mu.Unlock()
			return &id, nil
		}
		if wait := e.issuing; wait != nil {
			m.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		e.issuing = make(chan struct{})
		m.mu.Unlock()
		id, notAfter, err := m.issue(ctx, e.pod)
		m.finish(pod.UID, e, id, notAfter, err, false)
		if err != nil {
			return nil, err
		}
		cp := *id
		return &cp, nil
	}
}

// finish records the outcome of an issuance for e.
func (m *Manager) finish(uid types.UID, e *entry, id *proxy.Identity, notAfter time.Time, err error, renewal bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	close(e.issuing)
	e.issuing = nil
	if m.entries[uid] != e {
		return // forgotten meanwhile
	}
	if err != nil {
		if e.id == nil && !renewal {
			delete(m.entries, uid)
			return
		}
		e.failures++
		e.renewAt = time.Now().Add(min(m.opts.RetryInterval<<min(e.failures-1, 6), time.Minute))
		m.signal()
		return
	}
	now := time.Now()
	e.id, e.notAfter, e.failures = id, notAfter, 0
	e.renewAt = now.Add(jitter(notAfter.Sub(now)))
	if renewal {
		m.pending[uid] = true
	}
	m.signal()
}

// jitter is a random point between 50% and 80% of lifetime.
func jitter(lifetime time.Duration) time.Duration {
	if lifetime <= 0 {
		return 0
	}
	n, _ := rand.Int(rand.Reader, big.NewInt(300))
	return lifetime * time.Duration(500+n.Int64()) / 1000
}

func (m *Manager) signal() {
	select {
	case m.changed <- struct{}{}:
	default:
	}
}

// forget drops a pod's identity.
func (m *Manager) forget(uid types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.entries[uid]; ok {
		m.log.Debug("forgetting pod identity", "uid", uid)
	}
	delete(m.entries, uid)
	delete(m.pending, uid)
}

// rootsChanged gives the pods of ns the new roots.
func (m *Manager) rootsChanged(ns string, roots []byte) {
	if _, err := ca.ParseCertificates(roots); err != nil {
		m.log.Warn("ignoring unusable mesh roots", "namespace", ns, "err", err)
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for uid, e := range m.entries {
		if e.pod.namespace == ns && e.id != nil && string(e.id.RootsPEM) != string(roots) {
			id := *e.id
			id.RootsPEM = roots
			e.id = &id
			m.pending[uid] = true
		}
	}
	m.signal()
}

// Run renews identities and delivers Rotated until ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	if !cache.WaitForCacheSync(ctx.Done(), m.synced...) {
		if ctx.Err() != nil {
			return nil
		}
		return errors.New("mesh identity: caches did not sync")
	}
	m.log.Info("started")
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var out chan types.UID // non-nil when a UID waits for delivery
	var next types.UID
	for {
		due, wait, deliver, ok := m.plan()
		for _, uid := range due {
			go m.renew(ctx, uid)
		}
		if out == nil && ok {
			out, next = m.rotated, deliver
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			return nil
		case <-m.changed:
		case <-timer.C:
		case out <- next:
			m.mu.Lock()
			delete(m.pending, next)
			m.mu.Unlock()
			out = nil
		}
	}
}

// plan returns the pods due for renewal (marking them as renewing), how
// long until the next one is, and a pending rotation to deliver.
func (m *Manager) plan() (due []types.UID, wait time.Duration, deliver types.UID, ok bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := time.Now()
	wait = time.Hour
	for uid, e := range m.entries {
		if e.id == nil || e.issuing != nil {
			continue
		}
		if d := e.renewAt.Sub(now); d > 0 {
			wait = min(wait, d)
			continue
		}
		e.issuing = make(chan struct{})
		due = append(due, uid)
	}
	for uid := range m.pending {
		if _, live := m.entries[uid]; !live {
			delete(m.pending, uid)
			continue
		}
		return due, wait, uid, true
	}
	return due, wait, "", false
}

// renew issues a new identity for a pod whose renewal is due.
func (m *Manager) renew(ctx context.Context, uid types.UID) {
	m.mu.Lock()
	e := m.entries[uid]
	m.mu.Unlock()
	if e == nil {
		return
	}
	if _, err := m.pods.Pods(e.pod.namespace).Get(e.pod.name); err != nil {
		m.finish(uid, e, nil, time.Time{}, err, true)
		m.forget(uid)
		return
	}
	id, notAfter, err := m.issue(ctx, e.pod)
	if err != nil && ctx.Err() == nil {
		m.log.Warn("renewing a pod identity failed; will retry", "pod", e.pod.namespace+"/"+e.pod.name, "err", err)
	} else if err == nil {
		m.log.Debug("renewed pod identity", "pod", e.pod.namespace+"/"+e.pod.name, "notAfter", notAfter)
	}
	m.finish(uid, e, id, notAfter, err, true)
}

// newKey generates a pod's private key and its PEM form.
func newKey() (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return key, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}
