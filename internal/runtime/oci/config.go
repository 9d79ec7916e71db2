// Package oci turns a container's high-level settings into an OCI runtime
// spec the way Docker (moby's createSpec, on containerd's defaults) does:
// Docker's default capabilities, mounts, masked and read-only paths, device
// rules, seccomp profile, sysctls and rlimits, with docker run's semantics for
// --cap-add/--cap-drop, --privileged, --read-only, --tmpfs, --user,
// --group-add and the resource flags.
//
// It is a translator with no state: the container engine's shim hands the
// result to libcontainer (specconv.CreateLibcontainerConfig), and the node
// agent will do the same for pods. It speaks neither the Docker API nor the
// Kubernetes API, so either may import it; it imports nothing of Skiff's but
// errdefs. The only I/O it does is reading the container's /etc/passwd and
// /etc/group and, once per process, facts about the host (cgroup mode,
// fs.nr_open, this process's capabilities, the kernel version).
package oci

// Namespace modes for Config.NetNS, IPCNS, UTSNS and PIDNS: NamespaceNew
// (the zero value) gives the container its own namespace, NamespaceHost
// keeps the host's; anything else is the path of a namespace to join
// (/proc/<pid>/ns/net, /run/netns/<name>, ...).
const (
	NamespaceNew  = ""
	NamespaceHost = "host"
)

// DefaultShmSize is the size of /dev/shm when Config.ShmSize is 0 (Docker's
// --shm-size default).
const DefaultShmSize int64 = 64 << 20

// DefaultPath is the PATH a container gets when its Env has none (Docker's).
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Config is what a container asks for. The zero value of each field is
// Docker's default.
type Config struct {
	ID             string // required; names the default cgroup
	Rootfs         string // absolute path of the mounted root filesystem
	ReadOnlyRootfs bool   // docker --read-only

	Args     []string // the process; required. It runs as PID 1 (no init).
	Env      []string // KEY=VALUE; a bare KEY unsets it. Later entries win.
	Cwd      string   // absolute; "" is "/"
	Terminal bool     // allocate a pty (adds TERM=xterm)

	// User is docker's --user: "", "name", "uid", "uid:gid", "name:group",
	// "uid:group"..., resolved against Rootfs's /etc/passwd and /etc/group
	// (see ResolveUser). AdditionalGroups is --group-add (names or gids).
	User             string
	AdditionalGroups []string

	Hostname   string // the UTS hostname and $HOSTNAME; ignored in the host UTS namespace
	Domainname string

	CapAdd, CapDrop   []string // docker syntax: "chown", "CAP_CHOWN", "ALL"
	Privileged        bool     // all capabilities and devices, no seccomp, no masked paths, rw /sys and cgroupfs
	NoNewPrivileges   bool     // --security-opt no-new-privileges
	SeccompUnconfined bool     // --security-opt seccomp=unconfined

	// Mounts are binds and tmpfs mounts (docker -v, --mount). A mount at
	// the destination of a default mount (/dev/shm, /proc, ...) replaces
	// it; one at /dev replaces every default mount under /dev.
	Mounts []Mount
	// Tmpfs is docker --tmpfs: path → comma-separated options ("" for
	// the defaults rw,noexec,nosuid,nodev).
	Tmpfs map[string]string

	// Files the engine prepared, bind-mounted (read-only with
	// ReadOnlyRootfs) at /etc/hosts, /etc/resolv.conf and /etc/hostname
	// when set, unless Mounts already has that destination.
	HostsPath, ResolvConfPath, HostnamePath string

	// Namespaces: NamespaceNew, NamespaceHost or a path to join. A new
	// network namespace gets Docker's default sysctls
	// (net.ipv4.ip_unprivileged_port_start=0, net.ipv4.ping_group_range);
	// a joined one does not, since it belongs to someone else (a pod
	// sandbox, another container) — an engine that prepares a container's
	// own namespace and passes its path adds DefaultNetworkSysctls to
	// Sysctls itself. With IPCNS host, the host's /dev/shm is bind-mounted;
	// a container joining another IPC namespace should bind that one's
	// /dev/shm through Mounts for POSIX shared memory to be shared.
	NetNS, IPCNS, UTSNS, PIDNS string

	CgroupPath string // absolute; "" is /skiff/<ID>
	Resources  Resources

	Sysctls map[string]string // namespaced sysctls only
	ShmSize int64             // bytes; 0 is DefaultShmSize
	Rlimits []Rlimit          // docker --ulimit; RLIMIT_NOFILE defaults to DefaultNofile
}

// Mount is a bind or tmpfs mount.
type Mount struct {
	Destination string // absolute path in the container, not "/"
	Source      string // absolute host path for a bind; ignored for tmpfs
	Type        string // "bind" (also "") or "tmpfs"
	ReadOnly    bool
	// Options are extra mount options: for binds e.g. "bind" (not
	// recursive), "rshared", "nosuid"; for tmpfs e.g. "size=64m",
	// "mode=1777", "exec" (merged over the defaults, later wins).
	Options []string
}

// Resources are the container's cgroup limits and OOM preference. Zero
// means unset for each field.
type Resources struct {
	MemoryBytes int64 // >= 6 MiB when set
	// MemorySwapBytes is memory plus swap: 0 is the same as MemoryBytes
	// (no swap), -1 unlimited swap.
	MemorySwapBytes int64
	CPUShares       uint64 // relative weight (cgroup v2: converted to cpu.weight)
	CPUQuota        int64  // µs per CPUPeriod; >= 1000, or -1 for unlimited
	CPUPeriod       uint64 // µs, 1000..1000000
	// NanoCPUs is docker --cpus × 1e9, checked against the CPUs there are
	// and turned into CPUQuota/CPUPeriod (see the NanoCPUs function); it
	// excludes setting those.
	NanoCPUs    int64
	CpusetCpus  string // "0-2,4"
	CpusetMems  string
	PidsLimit   int64 // > 0 a limit, < 0 unlimited
	OOMScoreAdj int   // -1000..1000
}

// Rlimit is a process resource limit (docker --ulimit). Type is "nofile",
// "NOFILE" or "RLIMIT_NOFILE" alike; math.MaxUint64 means unlimited.
type Rlimit struct {
	Type       string
	Soft, Hard uint64
}

// DefaultNofile is RLIMIT_NOFILE (soft and hard) when Config.Rlimits does
// not set it: containerd's default spec (pkg/oci), lowered to the host's
// fs.nr_open if that is smaller.
const DefaultNofile uint64 = 1024

// DefaultNetworkSysctls are the sysctls Docker sets in a container's own
// network namespace: unprivileged ICMP echo sockets and binding ports
// below 1024 without CAP_NET_BIND_SERVICE.
func DefaultNetworkSysctls() map[string]string {
	return map[string]string{
		"net.ipv4.ping_group_range":           "0 2147483647",
		"net.ipv4.ip_unprivileged_port_start": "0",
	}
}
