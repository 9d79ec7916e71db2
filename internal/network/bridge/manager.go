// Package bridge gives containers Docker's bridge networks: a Linux bridge per
// network, a veth pair per endpoint, IP address management, masquerading to
// the outside, published ports (DNAT, including to 127.0.0.1 and hairpin),
// isolation between networks, and an embedded DNS server per user network
// that resolves container names and forwards the rest.
//
// Rules live in Skiff's own nftables table (family ip); other tables and the
// rest of the ruleset are never touched. The Manager persists networks,
// addresses and port mappings in its state directory, and a new Manager on
// the same directory (after a restart of Skiff) carries on with the kernel
// state it finds: containers keep running and keep their addresses.
//
// Subnets: the predefined "bridge" network is 172.17.0.0/16 on bridge
// "skiff0"; networks created without a subnet get the first free /24 of
// 172.18.0.0/16 that overlaps no other network and no route of the host
// (Options.DefaultPool and DefaultPoolSize change that). The gateway is the
// first address; containers get the lowest free ones after it. Published
// ports with HostPort 0 come from 32768–60999, like Docker's.
//
// "host", "none" and "container:<id>" networking are the engine's business
// (no namespace, an empty one from package netns, a shared one); this package
// only does bridge networks. IPv4 only.
//
// The container engine and, later, the node agent import this package.
package bridge

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	vnetns "github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"skiff.dev/skiff/internal/errdefs"
	"skiff.dev/skiff/internal/network/netns"
)

// DefaultNetworkName is the name of the predefined network Start creates.
const DefaultNetworkName = "bridge"

// Options configure a Manager. Only StateDir is required.
type Options struct {
	// StateDir holds the networks, addresses and port mappings (written
	// atomically); a new Manager on it picks up where the last one stopped.
	StateDir string
	// Table is the nftables table (family ip) the Manager owns. Default "skiff".
	Table string
	// Logger defaults to slog.Default(); the Manager adds component=bridge.
	Logger *slog.Logger
	// DefaultPool is where subnets of networks created without one come
	// from, in blocks of DefaultPoolSize bits. Default 172.18.0.0/16 in /24s.
	DefaultPool     string
	DefaultPoolSize int
	// DefaultSubnet and DefaultBridge describe the predefined "bridge"
	// network. Defaults 172.17.0.0/16 and "skiff0".
	DefaultSubnet string
	DefaultBridge string
	// Upstreams are the DNS servers ("ip" or "ip:port") names that no
	// container holds are forwarded to. Default: the nameservers of
	// /etc/resolv.conf, read by Start.
	Upstreams []string
	// UpstreamTimeout bounds the forwarding of one query over all upstreams;
	// then the client gets SERVFAIL. Default 3s.
	UpstreamTimeout time.Duration
	// NetNS is the path of the network namespace the Manager works in (its
	// "host"). Default: the namespace of the thread that calls Start.
	NetNS string
}

// Manager owns Skiff's bridge networks. It is safe for concurrent use.
type Manager struct {
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	started bool
	nsFile  *os.File        // the host namespace, held open
	nsPath  string          // a path to it for netns.Do
	nl      *netlink.Handle // netlink in the host namespace
	fw      *firewall
	pool    netip.Prefix
	nets    map[string]*network
	ports   *portAllocator
	dns     map[string]*dnsServer
}

// New returns a Manager; it does no I/O until Start.
func New(opts Options) *Manager {
	if opts.Table == "" {
		opts.Table = "skiff"
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.DefaultPool == "" {
		opts.DefaultPool = "172.18.0.0/16"
	}
	if opts.DefaultPoolSize == 0 {
		opts.DefaultPoolSize = 24
	}
	if opts.DefaultSubnet == "" {
		opts.DefaultSubnet = "172.17.0.0/16"
	}
	if opts.DefaultBridge == "" {
		opts.DefaultBridge = "skiff0"
	}
	if opts.UpstreamTimeout <= 0 {
		opts.UpstreamTimeout = 3 * time.Second
	}
	return &Manager{
		opts: opts,
		log:  opts.Logger.With("component", "bridge"),
	}
}

// Start loads the state, (re)creates the bridges and the nftables table,
// turns on IP forwarding and starts the DNS servers. It is idempotent: kernel
// state left by an earlier Manager is adopted, not duplicated.
func (m *Manager) Start(ctx context.Context) (err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.started {
		return nil
	}
	if m.opts.StateDir == "" {
		return fmt.Errorf("bridge: no state directory: %w", errdefs.ErrInvalid)
	}
	pool, err := parseSubnet(m.opts.DefaultPool)
	if err != nil {
		return fmt.Errorf("bridge: default pool: %w", err)
	}
	if b := m.opts.DefaultPoolSize; b < pool.Bits() || b > maxSubnetBits {
		return fmt.Errorf("bridge: default pool size /%d does not fit %s: %w", b, pool, errdefs.ErrInvalid)
	}
	m.pool = pool
	if err := os.MkdirAll(m.opts.StateDir, 0o700); err != nil {
		return fmt.Errorf("bridge: %w", err)
	}
	st, err := loadState(m.opts.StateDir)
	if err != nil {
		return err
	}
	if len(m.opts.Upstreams) == 0 {
		m.opts.Upstreams = resolvConfNameservers("/etc/resolv.conf")
	}
	m.opts.Upstreams = withPort53(m.opts.Upstreams)

	if err := m.openHost(); err != nil {
		return err
	}
	m.dns = map[string]*dnsServer{}
	defer func() {
		if err != nil {
			m.shutdown()
		}
	}()

	m.nets = map[string]*network{}
	for _, n := range st.Networks {
		m.nets[n.ID] = n
	}
	m.ports = newPortAllocator(st.NextPort)
	if m.defaultNetwork() == nil {
		if err := m.addDefaultNetwork(); err != nil {
			return err
		}
	}
	if err := m.save(); err != nil {
		return err
	}

	if err := m.inHost(func() error { return writeSysctl("net/ipv4/ip_forward", "1") }); err != nil {
		return fmt.Errorf("bridge: enable ip forwarding: %w", err)
	}
	var rules []ruleSpec
	rules = append(rules, baseRules()...)
	for _, n := range m.sortedNetworks() {
		if err := m.ensureBridge(n); err != nil {
			return err
		}
		rules = append(rules, networkRules(n)...)
		for _, ep := range n.Endpoints {
			rules = append(rules, endpointRules(n, ep)...)
			m.readoptPorts(ep)
		}
	}
	if err := m.fw.replace(rules); err != nil {
		return err
	}
	for _, n := range m.nets {
		if n.DNS {
			if err := m.startDNS(n); err != nil {
				return err
			}
		}
	}
	m.started = true
	m.log.Info("started", "networks", len(m.nets), "table", m.opts.Table, "upstreams", m.opts.Upstreams)
	return nil
}

// readoptPorts takes an endpoint's persisted mappings back into the
// allocator and re-reserves them on the host; a port a host process took
// meanwhile is logged (the NAT rule still wins for new connections).
func (m *Manager) readoptPorts(ep *endpoint) {
	for _, p := range ep.Ports {
		k := keyOf(p)
		m.ports.used[k] = ep.ContainerID
		var fd int
		err := m.inHost(func() (err error) { fd, err = bindPort(k); return err })
		if err != nil {
			m.log.Warn("published port not reserved on the host", "container", ep.ContainerID, "port", k.String(), "err", err)
			continue
		}
		ep.reserved = append(ep.reserved, fd)
	}
}

// Close stops the DNS servers and releases the Manager's handles. Bridges,
// endpoints and rules stay: containers keep running, and a new Manager on the
// same state directory takes over.
func (m *Manager) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.started {
		return nil
	}
	m.shutdown()
	m.started = false
	return nil
}

func (m *Manager) shutdown() {
	for id, s := range m.dns {
		s.stop()
		delete(m.dns, id)
	}
	for _, n := range m.nets {
		for _, ep := range n.Endpoints {
			closeAll(ep.reserved)
			ep.reserved = nil
		}
	}
	if m.nl != nil {
		m.nl.Close()
		m.nl = nil
	}
	if m.nsFile != nil {
		m.nsFile.Close()
		m.nsFile = nil
	}
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// openHost takes hold of the host network namespace.
func (m *Manager) openHost() error {
	path := m.opts.NetNS
	if path == "" {
		// The calling thread's namespace: lock so that the path names it.
		var err error
		func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			m.nsFile, err = os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		}()
		if err != nil {
			return fmt.Errorf("bridge: open own network namespace: %w", err)
		}
	} else {
		f, err := netns.Open(path)
		if err != nil {
			return fmt.Errorf("bridge: %w", err)
		}
		m.nsFile = f
	}
	m.nsPath = fmt.Sprintf("/proc/self/fd/%d", m.nsFile.Fd())
	h, err := netlink.NewHandleAt(vnetns.NsHandle(m.nsFile.Fd()))
	if err != nil {
		m.nsFile.Close()
		m.nsFile = nil
		return fmt.Errorf("bridge: netlink: %w", err)
	}
	m.nl = h
	m.fw = &firewall{
		table: &nftables.Table{Name: m.opts.Table, Family: nftables.TableFamilyIPv4},
		nsFD:  int(m.nsFile.Fd()),
	}
	return nil
}

// inHost runs fn on a thread in the host network namespace (for sysctls and
// sockets; netlink and nftables use handles bound to it instead).
func (m *Manager) inHost(fn func() error) error { return netns.Do(m.nsPath, fn) }

func (m *Manager) save() error {
	return saveState(m.opts.StateDir, m.nets, m.ports.next)
}

func (m *Manager) checkStarted() error {
	if !m.started {
		return fmt.Errorf("bridge: manager not started: %w", errdefs.ErrUnavailable)
	}
	return nil
}

// writeSysctl sets /proc/sys/<key> for the calling thread's namespace.
func writeSysctl(key, value string) error {
	return os.WriteFile(filepath.Join("/proc/sys", key), []byte(value), 0o644)
}

// resolvConfNameservers reads the nameserver lines of a resolv.conf.
func resolvConfNameservers(path string) []string {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "nameserver" {
			if a, err := netip.ParseAddr(fields[1]); err == nil {
				out = append(out, a.WithZone("").String())
			}
		}
	}
	return out
}

// withPort53 turns "ip" into "ip:53" and leaves "ip:port" alone.
func withPort53(servers []string) []string {
	out := make([]string, 0, len(servers))
	for _, s := range servers {
		if _, _, err := net.SplitHostPort(s); err == nil {
			out = append(out, s)
			continue
		}
		out = append(out, net.JoinHostPort(strings.Trim(s, "[]"), "53"))
	}
	return out
}

// isExist reports a netlink "file exists".
func isExist(err error) bool { return errors.Is(err, unix.EEXIST) }
