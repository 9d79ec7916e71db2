// Package podruntime is the node agent's pod runtime service: Skiff's
// CRI runtime and image service, in-process, with Go types instead of
// gRPC. The kubelet logic (package agent: API watches, pod workers,
// probes, volumes, status) calls it for everything that touches the
// kernel: pod sandboxes, containers, images, exec/attach/port-forward and
// stats. Only the node agent (and the daemon that wires it) may import it.
//
// # Sandboxes
//
// A sandbox is what a pod's containers share, held without a pause
// process: each namespace is a file bind-mounted under RunDir, like
// `ip netns add` does for network namespaces.
//
//   - net: a network namespace attached to the bridge network "pods"
//     (bridge skiff-pods, subnet Options.PodCIDR) with one IP; traffic
//     between pods is bridged without NAT, traffic to the outside is
//     masqueraded by the bridge Manager. hostNetwork pods use the node's
//     network (and UTS) namespace instead.
//   - ipc, uts: created by unshare(2) on a locked OS thread that is thrown
//     away afterwards; the UTS namespace gets the pod's hostname. A tmpfs
//     per pod is every container's /dev/shm, so POSIX shared memory is
//     shared like SysV IPC.
//   - pid (ShareProcessNamespace only): the kernel offers no handle on a
//     PID namespace before a process lives in it (pid_for_children of an
//     unsharing thread cannot be opened until its init exists), so the
//     pod's first container to run gets a new PID namespace and is its
//     PID 1; the sandbox's pid file is then bound to it and the others
//     join it. The namespace lives as long as that first process: when it
//     exits, the kernel kills every other process in it. The next
//     container to start when none of the pod runs makes a new one. This
//     is the price of having no pause process: the first container also
//     reaps the pod's orphans, and its end ends its siblings.
//   - /etc/hosts (Kubernetes' managed format), /etc/resolv.conf and
//     /etc/hostname, written per pod and bind-mounted into each container.
//
// # Containers
//
// Each container has its own mount namespace and, unless the pod shares
// one, its own PID namespace; it joins the sandbox's network, IPC and UTS
// namespaces. Its root filesystem is an overlay of the image's unpacked
// layers (package snapshot) with a per-container upper directory; its spec
// comes from package oci (Docker's defaults) with Kubernetes' semantics
// for command/args, user, runAsNonRoot, capabilities and resources. It is
// started by package runtime under its own skiff-shim, which outlives the
// agent. Output goes to the CRI log file
// <LogDir>/<namespace>_<name>_<uid>/<container>/<attempt>.log. Cgroups are
// /skiff/pods/pod<uid>/<container ID>, so a pod's usage can be read from
// its parent.
//
// # State
//
//	<DataDir>/sandboxes/<sandbox ID>.json            sandbox records
//	<DataDir>/containers/<ID>/container.json         container records
//	<DataDir>/containers/<ID>/{upper,work}           the overlay's writable layer
//	<DataDir>/containers/<ID>/termination-log        bind-mounted at terminationMessagePath
//	<RunDir>/sandboxes/<sandbox ID>/{net,ipc,uts,pid} namespace files
//	<RunDir>/sandboxes/<sandbox ID>/shm              the pod's /dev/shm (tmpfs)
//	<RunDir>/sandboxes/<sandbox ID>/{hosts,resolv.conf,hostname}
//	<RunDir>/containers/<ID>/{rootfs,bundle}         overlay mount point, OCI bundle
//
// Records are written before the kernel state they describe (intent
// first), so a crash at any point leaves something Start can finish or
// undo; they are renamed into place but not fsynced, since what they
// describe does not survive the machine either. An exited container's
// root filesystem is unmounted as soon as its exit is seen; its writable
// layer, record and log stay until Remove. A new Manager on the same directories (an agent restart) lists the
// same sandboxes and containers; running containers keep running and are
// never restarted by this package — restarting is the kubelet's decision.
// After a reboot (RunDir and the shims gone) sandboxes report not ready and
// containers exited; RunSandbox for the same pod then builds a new sandbox.
package podruntime
