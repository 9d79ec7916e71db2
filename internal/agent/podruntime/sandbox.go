package podruntime

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"golang.org/x/sys/unix"

	"skiff.dev/skiff/internal/errdefs"
	"skiff.dev/skiff/internal/network/bridge"
	"skiff.dev/skiff/internal/network/netns"
	"skiff.dev/skiff/internal/runtime/oci"
)

// SandboxConfig describes a pod's sandbox: the pod's identity and what
// its containers share.
type SandboxConfig struct {
	PodUID, Namespace, Name string
	// Hostname is the pod's hostname (UTS namespace, /etc/hosts,
	// $HOSTNAME); default: Name cut to 63 characters, as the kubelet does.
	// Ignored with HostNetwork, where the node's hostname applies.
	Hostname string
	// HostDomain is the pod's domain (<subdomain>.<namespace>.svc.<cluster
	// domain>) when it has one; /etc/hosts then names its FQDN.
	HostDomain  string
	HostNetwork bool // the node's network and UTS namespaces
	HostIPC     bool // the node's IPC namespace and /dev/shm
	HostPID     bool // the node's PID namespace
	// DNS, Searches and DNSOptions make the pod's resolv.conf; without DNS
	// servers it is the node's (Options.HostResolvConf), with Searches and
	// DNSOptions replacing the node's when given.
	DNS         []string
	Searches    []string
	DNSOptions  []string
	HostAliases []corev1.HostAlias
	// ShareProcessNamespace gives the pod's containers one PID namespace
	// (see the package documentation for its life).
	ShareProcessNamespace bool
	// Sysctls are the pod's namespaced sysctls (spec.securityContext.
	// sysctls), applied by each container as it starts.
	Sysctls map[string]string
}

// Sandbox is a pod's sandbox as containers see it.
type Sandbox struct {
	// ID names the sandbox (64 hex digits); a rebuilt sandbox gets a new
	// one.
	ID string
	// IP is the pod's address on the pods network; "" with HostNetwork
	// (the pod then has the node's addresses).
	IP string
	// NetNS, IPCNS and UTSNS are the namespace files containers join; ""
	// where the node's namespace is used.
	NetNS, IPCNS, UTSNS string
	// PIDNS is set when the pod shares a PID namespace. The kernel gives
	// no handle on a PID namespace before a process lives in it, so the
	// pod's first container to run makes it (and is its PID 1), and PIDNS
	// is then bound to it for the others to join.
	PIDNS string
	// HostsPath, ResolvPath and HostnamePath are bind-mounted at
	// /etc/hosts, /etc/resolv.conf and /etc/hostname.
	HostsPath, ResolvPath, HostnamePath string
	// ShmPath is the pod's /dev/shm ("" with HostIPC).
	ShmPath                                   string
	PodUID, Namespace, Name, Hostname         string
	HostNetwork, HostIPC, HostPID, SharePIDNS bool
	// Ready: its namespaces and network are in place. A sandbox that is
	// not (after a reboot) is rebuilt by RunSandbox.
	Ready     bool
	CreatedAt time.Time
	Sysctls   map[string]string
}

// sandboxPaths are the files of a sandbox under RunDir.
type sandboxPaths struct {
	dir, net, ipc, uts, pid, shm, hosts, resolv, hostname string
}

func (m *Manager) sandboxPaths(id string) sandboxPaths {
	dir := m.sandboxRunDir(id)
	return sandboxPaths{
		dir: dir, net: filepath.Join(dir, "net"), ipc: filepath.Join(dir, "ipc"), uts: filepath.Join(dir, "uts"),
		pid: filepath.Join(dir, "pid"), shm: filepath.Join(dir, "shm"), hosts: filepath.Join(dir, "hosts"),
		resolv: filepath.Join(dir, "resolv.conf"), hostname: filepath.Join(dir, "hostname"),
	}
}

// RunSandbox creates the pod's sandbox, or returns the one it has: it is
// idempotent by PodUID. A sandbox that is no longer intact (after a
// reboot, or a namespace file removed behind its back) is torn down and
// built again, with a new ID and possibly a new IP.
func (m *Manager) RunSandbox(ctx context.Context, c SandboxConfig) (Sandbox, error) {
	if err := m.checkStarted(); err != nil {
		return Sandbox{}, err
	}
	if err := normalizeSandboxConfig(&c); err != nil {
		return Sandbox{}, err
	}
	unlock := m.podLocks.lock(c.PodUID)
	defer unlock()

	m.mu.Lock()
	sb := m.sandboxes[c.PodUID]
	m.mu.Unlock()
	if sb != nil {
		if m.healthy(sb) {
			return m.public(sb, true), nil
		}
		m.log.Warn("rebuilding a sandbox that is not intact", "pod", c.Namespace+"/"+c.Name, "sandbox", sb.rec.ID)
		if err := m.teardownSandbox(ctx, sb); err != nil {
			return Sandbox{}, err
		}
	}

	sb = &sandbox{rec: sandboxRecord{ID: newID(), PodUID: c.PodUID, Config: c, State: stateCreating, CreatedAt: time.Now().UTC()}}
	if err := m.saveSandbox(&sb.rec); err != nil {
		return Sandbox{}, err
	}
	m.mu.Lock()
	m.sandboxes[c.PodUID] = sb
	m.mu.Unlock()
	if err := m.setUpSandbox(ctx, sb); err != nil {
		if terr := m.teardownSandbox(context.WithoutCancel(ctx), sb); terr != nil {
			m.log.Warn("clean up after a failed sandbox", "sandbox", sb.rec.ID, "err", terr)
		}
		return Sandbox{}, fmt.Errorf("pod %s/%s: create sandbox: %w", c.Namespace, c.Name, err)
	}
	sb.rec.State = stateReady
	if err := m.saveSandbox(&sb.rec); err != nil {
		_ = m.teardownSandbox(context.WithoutCancel(ctx), sb)
		return Sandbox{}, err
	}
	m.log.Info("sandbox ready", "pod", c.Namespace+"/"+c.Name, "sandbox", sb.rec.ID, "ip", sb.rec.IP)
	return m.public(sb, true), nil
}

// normalizeSandboxConfig checks c and fills in its defaults.
func normalizeSandboxConfig(c *SandboxConfig) error {
	for _, f := range []struct{ kind, v string }{{"pod UID", c.PodUID}, {"pod namespace", c.Namespace}, {"pod name", c.Name}} {
		if err := validName(f.kind, f.v); err != nil {
			return err
		}
	}
	if c.HostNetwork {
		c.Hostname, _ = os.Hostname()
	} else if c.Hostname == "" {
		c.Hostname = strings.TrimRight(c.Name[:min(len(c.Name), 63)], "-.")
	}
	if c.Hostname == "" || len(c.Hostname) > 64 || strings.ContainsAny(c.Hostname, " \t\r\n/\x00") {
		return fmt.Errorf("pod hostname %q: %w", c.Hostname, errdefs.ErrInvalid)
	}
	if strings.ContainsAny(c.HostDomain, " \t\r\n/\x00") {
		return fmt.Errorf("pod domain %q: %w", c.HostDomain, errdefs.ErrInvalid)
	}
	if c.ShareProcessNamespace && c.HostPID {
		return fmt.Errorf("pod %s/%s: shareProcessNamespace and hostPID cannot both be set: %w", c.Namespace, c.Name, errdefs.ErrInvalid)
	}
	return checkHostAliases(c.HostAliases)
}

// setUpSandbox makes the sandbox's namespaces, network and files. What it
// made is found and undone by teardownSandbox.
func (m *Manager) setUpSandbox(ctx context.Context, sb *sandbox) error {
	c := sb.rec.Config
	p := m.sandboxPaths(sb.rec.ID)
	if err := os.MkdirAll(p.dir, 0o711); err != nil {
		return err
	}
	var files []nsFile
	if !c.HostIPC {
		files = append(files, nsFile{link: "ipc", flag: unix.CLONE_NEWIPC, path: p.ipc})
	}
	if !c.HostNetwork {
		files = append(files, nsFile{link: "uts", flag: unix.CLONE_NEWUTS, path: p.uts})
	}
	if len(files) > 0 {
		if err := createNamespaces(c.Hostname, files...); err != nil {
			return err
		}
	}
	if !c.HostIPC {
		if err := mountShm(p.shm); err != nil {
			return err
		}
	}
	var hosts []byte
	if c.HostNetwork {
		node, _ := os.ReadFile("/etc/hosts")
		hosts = nodeHostsFile(node, c.HostAliases)
	} else {
		if err := netns.Create(p.net); err != nil {
			return err
		}
		// Docker's and containerd's defaults for a container's own network:
		// unprivileged ports below 1024 and ICMP echo sockets.
		err := netns.Do(p.net, func() error {
			for k, v := range oci.DefaultNetworkSysctls() {
				if err := os.WriteFile("/proc/sys/"+strings.ReplaceAll(k, ".", "/"), []byte(v), 0o644); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("network sysctls: %w", err)
		}
		ep, err := m.opts.Network.Attach(ctx, bridge.AttachRequest{
			NetworkID:   m.networkID,
			ContainerID: sb.rec.ID,
			NetNS:       p.net,
			IfName:      "eth0",
		})
		if err != nil {
			return err
		}
		sb.rec.IP = ep.IP
		hosts = hostsFile(ep.IP, c.Hostname, c.HostDomain, c.HostAliases)
	}
	node, _ := os.ReadFile(m.opts.HostResolvConf)
	resolv, err := resolvConf(node, c.DNS, c.Searches, c.DNSOptions)
	if err != nil {
		return err
	}
	// RunDir is not durable anyway: plain writes, no fsync.
	for path, data := range map[string][]byte{p.hosts: hosts, p.resolv: resolv, p.hostname: []byte(c.Hostname + "\n")} {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// healthy reports whether the sandbox is ready and its kernel state in
// place.
func (m *Manager) healthy(sb *sandbox) bool {
	if sb.rec.State != stateReady {
		return false
	}
	c := sb.rec.Config
	p := m.sandboxPaths(sb.rec.ID)
	switch {
	case !c.HostIPC && (!isNamespace(p.ipc, unix.CLONE_NEWIPC) || !isMountPoint(p.shm)):
		return false
	case !c.HostNetwork && !isNamespace(p.uts, unix.CLONE_NEWUTS):
		return false
	case !c.HostNetwork && !isNamespace(p.net, unix.CLONE_NEWNET):
		return false
	}
	if c.HostNetwork {
		return true
	}
	return slices.ContainsFunc(m.opts.Network.Endpoints(m.networkID), func(ep bridge.Endpoint) bool {
		return ep.ContainerID == sb.rec.ID
	})
}

// teardownSandbox removes everything of a sandbox, its record last.
// Missing pieces are fine. Call with the pod's lock held.
func (m *Manager) teardownSandbox(ctx context.Context, sb *sandbox) error {
	p := m.sandboxPaths(sb.rec.ID)
	var errs []error
	if !sb.rec.Config.HostNetwork {
		errs = append(errs, m.opts.Network.Detach(ctx, m.networkID, sb.rec.ID))
		errs = append(errs, netns.Delete(p.net))
	}
	for _, f := range []string{p.ipc, p.uts, p.pid} {
		errs = append(errs, removeNSFile(f))
	}
	errs = append(errs, unmountAll(p.shm))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sandbox %s: %w", sb.rec.ID, err)
	}
	if err := os.RemoveAll(p.dir); err != nil {
		return err
	}
	if err := m.deleteSandboxRecord(sb.rec.ID); err != nil {
		return err
	}
	m.mu.Lock()
	if m.sandboxes[sb.rec.PodUID] == sb {
		delete(m.sandboxes, sb.rec.PodUID)
	}
	m.mu.Unlock()
	return nil
}

// RemoveSandbox removes the pod's sandbox: its network attachment and
// namespaces, files and cgroup parent. Containers of the pod still there
// are killed and removed first (as CRI's RemovePodSandbox does), so the
// kubelet normally stops them before. Removing a sandbox that does not
// exist is not an error.
func (m *Manager) RemoveSandbox(ctx context.Context, podUID string) error {
	if err := m.checkStarted(); err != nil {
		return err
	}
	unlock := m.podLocks.lock(podUID)
	defer unlock()
	for _, c := range m.podContainers(podUID) {
		if err := m.Remove(ctx, c.rec.ID); err != nil {
			return fmt.Errorf("remove sandbox of pod %s: %w", podUID, err)
		}
	}
	m.mu.Lock()
	sb := m.sandboxes[podUID]
	m.mu.Unlock()
	if sb == nil {
		return nil
	}
	if err := m.teardownSandbox(ctx, sb); err != nil {
		return err
	}
	removePodCgroups(podUID)
	c := sb.rec.Config
	// The pod's log directory goes once its containers' logs went.
	logDir := m.podLogDir(c.Namespace, c.Name, c.PodUID)
	if entries, err := os.ReadDir(logDir); err == nil {
		for _, e := range entries {
			_ = os.Remove(filepath.Join(logDir, e.Name()))
		}
		_ = os.Remove(logDir)
	}
	m.log.Info("sandbox removed", "pod", c.Namespace+"/"+c.Name, "sandbox", sb.rec.ID)
	return nil
}

// Sandbox returns the pod's sandbox; Ready says whether it is intact.
func (m *Manager) Sandbox(podUID string) (Sandbox, bool) {
	m.mu.Lock()
	sb := m.sandboxes[podUID]
	m.mu.Unlock()
	if sb == nil {
		return Sandbox{}, false
	}
	return m.public(sb, m.healthy(sb)), true
}

// Sandboxes lists every sandbox (for the kubelet's garbage collection),
// sorted by namespace and name.
func (m *Manager) Sandboxes() []Sandbox {
	m.mu.Lock()
	all := make([]*sandbox, 0, len(m.sandboxes))
	for _, sb := range m.sandboxes {
		all = append(all, sb)
	}
	m.mu.Unlock()
	out := make([]Sandbox, 0, len(all))
	for _, sb := range all {
		out = append(out, m.public(sb, m.healthy(sb)))
	}
	slices.SortFunc(out, func(a, b Sandbox) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return out
}

func (m *Manager) public(sb *sandbox, ready bool) Sandbox {
	c := sb.rec.Config
	p := m.sandboxPaths(sb.rec.ID)
	s := Sandbox{
		ID: sb.rec.ID, IP: sb.rec.IP,
		HostsPath: p.hosts, ResolvPath: p.resolv, HostnamePath: p.hostname,
		PodUID: c.PodUID, Namespace: c.Namespace, Name: c.Name, Hostname: c.Hostname,
		HostNetwork: c.HostNetwork, HostIPC: c.HostIPC, HostPID: c.HostPID, SharePIDNS: c.ShareProcessNamespace,
		Ready: ready, CreatedAt: sb.rec.CreatedAt, Sysctls: c.Sysctls,
	}
	if !c.HostNetwork {
		s.NetNS, s.UTSNS = p.net, p.uts
	}
	if !c.HostIPC {
		s.IPCNS, s.ShmPath = p.ipc, p.shm
	}
	if c.ShareProcessNamespace {
		s.PIDNS = p.pid
	}
	return s
}

// podCgroupParent is the cgroup (absolute, as libcontainer takes it) of
// the pod's containers.
func podCgroupParent(podUID string) string { return "/skiff/pods/pod" + podUID }

// removePodCgroups removes the pod's cgroup parent from every hierarchy
// (its containers' own cgroups are gone with them). A parent that still
// holds something stays.
func removePodCgroups(podUID string) {
	rel := strings.TrimPrefix(podCgroupParent(podUID), "/")
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/*", rel))
	if d := filepath.Join("/sys/fs/cgroup", rel); isDir(d) {
		dirs = append(dirs, d)
	}
	for _, d := range dirs {
		_ = os.Remove(d)
	}
}

func isDir(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}
