package podruntime

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sync"

	"skiff.dev/skiff/internal/errdefs"
	"skiff.dev/skiff/internal/image/images"
	"skiff.dev/skiff/internal/image/snapshot"
	"skiff.dev/skiff/internal/network/bridge"
	"skiff.dev/skiff/internal/runtime"
)

// Defaults of Options.
const (
	DefaultPodCIDR = "10.244.0.0/24"
	DefaultLogDir  = "/var/log/pods"
	// PodNetwork and PodBridge name the bridge network pods are attached
	// to and its Linux bridge.
	PodNetwork = "pods"
	PodBridge  = "skiff-pods"
	// DefaultHostResolvConf is the node's resolver configuration, copied
	// into pods that are given no DNS servers.
	DefaultHostResolvConf = "/etc/resolv.conf"
)

// Options configure a Manager. DataDir, RunDir, Images, Snapshots,
// Runtime and Network are required. The Manager owns DataDir and RunDir
// alone: Start removes what it finds there that no record claims.
type Options struct {
	// DataDir is persistent: records and the containers' writable layers.
	DataDir string
	// RunDir is tmpfs-like (gone after a reboot, like the shims):
	// namespace files, mount points, OCI bundles, per-pod /etc files.
	RunDir    string
	Images    *images.Service
	Snapshots *snapshot.Store
	Runtime   *runtime.Runtime
	// Network is a started bridge Manager (one per network namespace);
	// the Manager creates or reuses the network PodNetwork on it.
	Network *bridge.Manager
	// PodCIDR is the subnet of PodNetwork. Default DefaultPodCIDR.
	PodCIDR string
	// LogDir is the root of the CRI log files. Default DefaultLogDir;
	// it must be absolute.
	LogDir string
	// HostResolvConf is copied into pods without DNS servers of their
	// own. Default DefaultHostResolvConf.
	HostResolvConf string
	// Logger defaults to slog.Default(); the Manager adds
	// component=podruntime.
	Logger *slog.Logger
}

// Manager runs pod sandboxes and their containers. Its methods are safe
// for concurrent use; operations on one pod are serialized.
type Manager struct {
	opts Options
	log  *slog.Logger

	podLocks keyedMutex // by pod UID
	pulls    keyedMutex // by image reference

	mu         sync.Mutex
	started    bool
	networkID  string
	sandboxes  map[string]*sandbox   // by pod UID
	containers map[string]*container // by container ID
}

// New returns a Manager; it does no I/O until Start.
func New(opts Options) *Manager {
	if opts.PodCIDR == "" {
		opts.PodCIDR = DefaultPodCIDR
	}
	if opts.LogDir == "" {
		opts.LogDir = DefaultLogDir
	}
	if opts.HostResolvConf == "" {
		opts.HostResolvConf = DefaultHostResolvConf
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Manager{
		opts:       opts,
		log:        opts.Logger.With("component", "podruntime"),
		sandboxes:  map[string]*sandbox{},
		containers: map[string]*container{},
	}
}

// Start loads the records, makes sure the pods network exists and cleans
// up what an interrupted operation left (half-created sandboxes and
// containers, mounts and namespace files nobody records). Containers that
// run are left alone. It is an error to call it twice; no other method
// may be called before it returned.
func (m *Manager) Start(ctx context.Context) error {
	if err := m.checkOptions(); err != nil {
		return err
	}
	m.mu.Lock()
	started := m.started || m.networkID != ""
	m.mu.Unlock()
	if started {
		return fmt.Errorf("podruntime: already started: %w", errdefs.ErrConflict)
	}
	for _, d := range []string{m.sandboxRecordDir(), m.containerDataRoot(), m.sandboxRunRoot(), m.containerRunRoot()} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return fmt.Errorf("podruntime: %w", err)
		}
	}
	netID, err := m.ensureNetwork(ctx)
	if err != nil {
		return err
	}
	sandboxes, err := loadSandboxes(m.sandboxRecordDir(), m.log)
	if err != nil {
		return err
	}
	containers, err := loadContainers(m.containerDataRoot(), m.log)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.networkID = netID
	for _, sb := range sandboxes {
		m.sandboxes[sb.rec.PodUID] = sb
	}
	for _, c := range containers {
		m.containers[c.rec.ID] = c
	}
	m.mu.Unlock()
	m.collectGarbage(ctx)
	m.mu.Lock()
	m.started = true
	m.mu.Unlock()
	m.log.Info("started", "sandboxes", len(sandboxes), "containers", len(containers), "podCIDR", m.opts.PodCIDR)
	return nil
}

func (m *Manager) checkOptions() error {
	o := m.opts
	switch {
	case o.DataDir == "" || o.RunDir == "":
		return fmt.Errorf("podruntime: DataDir and RunDir are required: %w", errdefs.ErrInvalid)
	case o.Images == nil || o.Snapshots == nil || o.Runtime == nil || o.Network == nil:
		return fmt.Errorf("podruntime: Images, Snapshots, Runtime and Network are required: %w", errdefs.ErrInvalid)
	case !filepath.IsAbs(o.LogDir) || !filepath.IsAbs(o.DataDir) || !filepath.IsAbs(o.RunDir):
		return fmt.Errorf("podruntime: DataDir, RunDir and LogDir must be absolute: %w", errdefs.ErrInvalid)
	}
	if _, err := netip.ParsePrefix(o.PodCIDR); err != nil {
		return fmt.Errorf("podruntime: pod CIDR %q: %v: %w", o.PodCIDR, err, errdefs.ErrInvalid)
	}
	return nil
}

// ensureNetwork creates the pods network, or checks the one there is.
// The service proxy does the hairpin NAT of Services itself, so the
// network's own (which would NAT every pod → Service → pod flow) is off.
func (m *Manager) ensureNetwork(ctx context.Context) (string, error) {
	want, _ := netip.ParsePrefix(m.opts.PodCIDR)
	want = want.Masked()
	if n, err := m.opts.Network.Network(PodNetwork); err == nil {
		if n.Subnet != want.String() {
			return "", fmt.Errorf("podruntime: network %s has subnet %s, not the pod CIDR %s (remove it once no pod uses it): %w",
				PodNetwork, n.Subnet, want, errdefs.ErrConflict)
		}
		if !n.NoHairpinNAT {
			if err := m.opts.Network.SetNoHairpinNAT(ctx, n.ID, true); err != nil {
				return "", fmt.Errorf("podruntime: network %s: %w", PodNetwork, err)
			}
		}
		return n.ID, nil
	}
	n, err := m.opts.Network.CreateNetwork(ctx, bridge.NetworkConfig{
		ID:           newID(),
		Name:         PodNetwork,
		Subnet:       want.String(),
		Bridge:       PodBridge,
		NoHairpinNAT: true,
	})
	if err != nil {
		return "", fmt.Errorf("podruntime: create network %s: %w", PodNetwork, err)
	}
	return n.ID, nil
}

func (m *Manager) checkStarted() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.started {
		return fmt.Errorf("podruntime: not started: %w", errdefs.ErrUnavailable)
	}
	return nil
}

// Paths.

func (m *Manager) sandboxRecordDir() string  { return filepath.Join(m.opts.DataDir, "sandboxes") }
func (m *Manager) containerDataRoot() string { return filepath.Join(m.opts.DataDir, "containers") }
func (m *Manager) sandboxRunRoot() string    { return filepath.Join(m.opts.RunDir, "sandboxes") }
func (m *Manager) containerRunRoot() string  { return filepath.Join(m.opts.RunDir, "containers") }

func (m *Manager) sandboxRunDir(id string) string { return filepath.Join(m.sandboxRunRoot(), id) }
func (m *Manager) containerDataDir(id string) string {
	return filepath.Join(m.containerDataRoot(), id)
}
func (m *Manager) containerRunDir(id string) string { return filepath.Join(m.containerRunRoot(), id) }

// podLogDir is where the pod's CRI logs go, as the kubelet lays them out.
func (m *Manager) podLogDir(namespace, name, uid string) string {
	return filepath.Join(m.opts.LogDir, namespace+"_"+name+"_"+uid)
}

// newID returns 64 random hex digits (sandbox and container IDs).
func newID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// keyedMutex serializes work per key (a pod, an image reference) without
// keeping a mutex for every key ever seen.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*refMutex
}

type refMutex struct {
	sync.Mutex
	refs int
}

// lock locks key and returns its unlock.
func (k *keyedMutex) lock(key string) func() {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*refMutex{}
	}
	l, ok := k.locks[key]
	if !ok {
		l = &refMutex{}
		k.locks[key] = l
	}
	l.refs++
	k.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		k.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}

// validName accepts what may become a path component or part of one:
// pod UIDs, namespaces, names, container names.
func validName(kind, s string) error {
	if s == "" || len(s) > 253 || s == "." || s == ".." {
		return fmt.Errorf("%s %q: want 1-253 characters: %w", kind, s, errdefs.ErrInvalid)
	}
	for _, c := range []byte(s) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.'
		if !ok {
			return fmt.Errorf("%s %q: only letters, digits, '-' and '.' are allowed: %w", kind, s, errdefs.ErrInvalid)
		}
	}
	return nil
}

// ignoreNotFound drops errdefs.ErrNotFound.
func ignoreNotFound(err error) error {
	if errors.Is(err, errdefs.ErrNotFound) {
		return nil
	}
	return err
}
