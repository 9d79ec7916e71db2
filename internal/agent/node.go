package agent

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	goruntime "runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"skiff.dev/skiff/internal/version"
)

// Eviction thresholds the pressure conditions use (the kubelet's
// defaults).
const (
	memoryPressureBelow = 100 << 20 // memory.available < 100Mi
	diskPressureBelow   = 0.10      // nodefs.available < 10%
	pidPressureAbove    = 0.90      // more than 90% of pid_max in use
)

// nodeFacts are what the agent learns of its machine once, at start.
type nodeFacts struct {
	capacity    corev1.ResourceList
	allocatable corev1.ResourceList
	addresses   []corev1.NodeAddress
	info        corev1.NodeSystemInfo
	hostIP      string
	uid         types.UID // the Node object's, once registered
}

func gatherNodeFacts(o Options) (*nodeFacts, error) {
	if err := os.MkdirAll(o.DataDir, 0o750); err != nil {
		return nil, err
	}
	mem, err := memInfo("MemTotal")
	if err != nil {
		return nil, fmt.Errorf("memory: %w", err)
	}
	f := &nodeFacts{capacity: corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewQuantity(int64(goruntime.NumCPU()), resource.DecimalSI),
		corev1.ResourceMemory: *resource.NewQuantity(mem, resource.BinarySI),
		corev1.ResourcePods:   *resource.NewQuantity(int64(o.MaxPods), resource.DecimalSI),
	}}
	var st unix.Statfs_t
	if unix.Statfs(o.DataDir, &st) == nil {
		f.capacity[corev1.ResourceEphemeralStorage] = *resource.NewQuantity(int64(st.Blocks)*st.Bsize, resource.BinarySI)
	}
	f.allocatable = f.capacity.DeepCopy()

	f.hostIP = o.NodeIP
	if f.hostIP == "" {
		f.hostIP = detectNodeIP()
	}
	f.addresses = []corev1.NodeAddress{
		{Type: corev1.NodeInternalIP, Address: f.hostIP},
		{Type: corev1.NodeHostName, Address: o.NodeName},
	}

	var uts unix.Utsname
	_ = unix.Uname(&uts)
	f.info = corev1.NodeSystemInfo{
		MachineID:               readTrimmed("/etc/machine-id"),
		SystemUUID:              readTrimmed("/sys/class/dmi/id/product_uuid"),
		BootID:                  readTrimmed("/proc/sys/kernel/random/boot_id"),
		KernelVersion:           unix.ByteSliceToString(uts.Release[:]),
		OSImage:                 osImage(),
		ContainerRuntimeVersion: "skiff://" + version.Version,
		KubeletVersion:          version.Kubernetes,
		OperatingSystem:         goruntime.GOOS,
		Architecture:            goruntime.GOARCH,
	}
	return f, nil
}

// hostIP is the node's address: the pods' hostIP.
func (a *Agent) hostIP() string {
	if a.node == nil {
		return ""
	}
	return a.node.hostIP
}

// detectNodeIP finds the address of the interface that has the default
// route (a UDP "connect" picks it without sending anything), else the
// first global unicast IPv4 address, else 127.0.0.1.
func detectNodeIP() string {
	if c, err := net.Dial("udp4", "192.0.2.1:9"); err == nil {
		ip := c.LocalAddr().(*net.UDPAddr).IP
		c.Close()
		if ip.IsGlobalUnicast() {
			return ip.String()
		}
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && n.IP.IsGlobalUnicast() {
				return n.IP.String()
			}
		}
	}
	return "127.0.0.1"
}

func readTrimmed(path string) string {
	b, _ := os.ReadFile(path)
	return strings.TrimSpace(string(b))
}

// osImage is /etc/os-release's PRETTY_NAME.
func osImage() string {
	b, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return "Linux"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
			return strings.Trim(v, `"'`)
		}
	}
	return "Linux"
}

// memInfo reads one /proc/meminfo field, in bytes.
func memInfo(field string) (int64, error) {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	s := bufio.NewScanner(bytes.NewReader(b))
	for s.Scan() {
		name, rest, ok := strings.Cut(s.Text(), ":")
		if !ok || name != field {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			break
		}
		n, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return 0, err
		}
		if len(fields) > 1 && fields[1] == "kB" {
			n *= 1024
		}
		return n, nil
	}
	return 0, fmt.Errorf("/proc/meminfo has no %s", field)
}

// nodeObject is the Node the agent registers.
func (a *Agent) nodeObject() *corev1.Node {
	labels := map[string]string{
		corev1.LabelHostname:      a.opts.NodeName,
		corev1.LabelOSStable:      goruntime.GOOS,
		corev1.LabelArchStable:    goruntime.GOARCH,
		"beta.kubernetes.io/os":   goruntime.GOOS,
		"beta.kubernetes.io/arch": goruntime.GOARCH,
	}
	for k, v := range a.opts.NodeLabels {
		labels[k] = v
	}
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        a.opts.NodeName,
			Labels:      labels,
			Annotations: map[string]string{"volumes.kubernetes.io/controller-managed-attach-detach": "true"},
		},
	}
	if a.opts.PodCIDR != "" {
		n.Spec.PodCIDR = a.opts.PodCIDR
		n.Spec.PodCIDRs = []string{a.opts.PodCIDR}
	}
	n.Status = a.nodeStatus(nil)
	return n
}

// registerNode creates the Node, or brings an existing one (a restart, or
// a node object someone created) up to date.
func (a *Agent) registerNode(ctx context.Context) error {
	want := a.nodeObject()
	nodes := a.client.CoreV1().Nodes()
	for {
		created, err := nodes.Create(ctx, want, metav1.CreateOptions{})
		if err == nil {
			a.node.uid = created.UID
			// Create ignores the status: write it.
			created.Status = want.Status
			_, err = nodes.UpdateStatus(ctx, created, metav1.UpdateOptions{})
			if err == nil {
				a.log.Info("node registered")
				return nil
			}
		}
		if apierrors.IsAlreadyExists(err) {
			err = a.updateNode(ctx, want)
			if err == nil {
				return nil
			}
		}
		a.log.Warn("registering the node; retrying", "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func (a *Agent) updateNode(ctx context.Context, want *corev1.Node) error {
	nodes := a.client.CoreV1().Nodes()
	cur, err := nodes.Get(ctx, a.opts.NodeName, metav1.GetOptions{})
	if err != nil {
		return err
	}
	next := cur.DeepCopy()
	if next.Labels == nil {
		next.Labels = map[string]string{}
	}
	for k, v := range want.Labels {
		next.Labels[k] = v
	}
	if next.Annotations == nil {
		next.Annotations = map[string]string{}
	}
	for k, v := range want.Annotations {
		next.Annotations[k] = v
	}
	if next.Spec.PodCIDR == "" && want.Spec.PodCIDR != "" {
		next.Spec.PodCIDR, next.Spec.PodCIDRs = want.Spec.PodCIDR, want.Spec.PodCIDRs
	}
	if !equality.Semantic.DeepEqual(cur.ObjectMeta, next.ObjectMeta) || !equality.Semantic.DeepEqual(cur.Spec, next.Spec) {
		if next, err = nodes.Update(ctx, next, metav1.UpdateOptions{}); err != nil {
			return err
		}
	}
	a.node.uid = next.UID
	next.Status = a.nodeStatus(&next.Status)
	_, err = nodes.UpdateStatus(ctx, next, metav1.UpdateOptions{})
	return err
}

// nodeStatus computes the node's status; conditions keep their
// transition times from old.
func (a *Agent) nodeStatus(old *corev1.NodeStatus) corev1.NodeStatus {
	f := a.node
	now := metav1.NewTime(a.clock.Now())
	st := corev1.NodeStatus{
		Capacity:        f.capacity.DeepCopy(),
		Allocatable:     f.allocatable.DeepCopy(),
		Addresses:       f.addresses,
		NodeInfo:        f.info,
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: a.opts.ServerPort}},
	}
	if old != nil {
		st.Images, st.VolumesInUse, st.VolumesAttached, st.Config = old.Images, old.VolumesInUse, old.VolumesAttached, old.Config
	}
	cond := func(t corev1.NodeConditionType, bad bool, badReason, badMsg, okReason, okMsg string) corev1.NodeCondition {
		c := corev1.NodeCondition{Type: t, Status: corev1.ConditionFalse, Reason: okReason, Message: okMsg}
		if bad {
			c.Status, c.Reason, c.Message = corev1.ConditionTrue, badReason, badMsg
		}
		return c
	}
	memPressure, diskPressure, pidPressure := a.pressure()
	st.Conditions = []corev1.NodeCondition{
		cond(corev1.NodeMemoryPressure, memPressure, "KubeletHasInsufficientMemory", "kubelet has insufficient memory available",
			"KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
		cond(corev1.NodeDiskPressure, diskPressure, "KubeletHasDiskPressure", "kubelet has disk pressure",
			"KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
		cond(corev1.NodePIDPressure, pidPressure, "KubeletHasInsufficientPID", "kubelet has insufficient PID available",
			"KubeletHasSufficientPID", "kubelet has sufficient PID available"),
		{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "kubelet is posting ready status"},
	}
	for i := range st.Conditions {
		c := &st.Conditions[i]
		c.LastHeartbeatTime, c.LastTransitionTime = now, now
		if old == nil {
			continue
		}
		for _, o := range old.Conditions {
			if o.Type == c.Type && o.Status == c.Status {
				c.LastTransitionTime = o.LastTransitionTime
			}
		}
	}
	return st
}

// pressure samples memory, disk and PID pressure against the kubelet's
// default eviction thresholds.
func (a *Agent) pressure() (mem, disk, pid bool) {
	if avail, err := memInfo("MemAvailable"); err == nil {
		mem = avail < memoryPressureBelow
	}
	var st unix.Statfs_t
	if unix.Statfs(a.opts.DataDir, &st) == nil && st.Blocks > 0 {
		disk = float64(st.Bavail)/float64(st.Blocks) < diskPressureBelow
	}
	// /proc/loadavg's fourth field is running/total tasks.
	if fields := strings.Fields(readTrimmed("/proc/loadavg")); len(fields) >= 4 {
		if _, total, ok := strings.Cut(fields[3], "/"); ok {
			n, err1 := strconv.Atoi(total)
			limit, err2 := strconv.Atoi(readTrimmed("/proc/sys/kernel/pid_max"))
			if err1 == nil && err2 == nil && limit > 0 {
				pid = float64(n) > pidPressureAbove*float64(limit)
			}
		}
	}
	return mem, disk, pid
}

// syncNodeStatus recomputes the node's status every
// NodeStatusUpdateFrequency and writes it when it changed or
// NodeStatusReportFrequency passed; a deleted Node is registered again.
func (a *Agent) syncNodeStatus(ctx context.Context) {
	t := a.clock.NewTicker(a.opts.NodeStatusUpdateFrequency)
	defer t.Stop()
	lastReport := a.clock.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		nodes := a.client.CoreV1().Nodes()
		cur, err := nodes.Get(ctx, a.opts.NodeName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			if err := a.registerNode(ctx); err != nil && ctx.Err() == nil {
				a.log.Warn("registering the node again", "err", err)
			}
			continue
		}
		if err != nil {
			a.log.Warn("reading the node", "err", err)
			continue
		}
		next := a.nodeStatus(&cur.Status)
		if !nodeStatusChanged(&cur.Status, &next) && a.clock.Since(lastReport) < a.opts.NodeStatusReportFrequency {
			continue
		}
		cur.Status = next
		if _, err := nodes.UpdateStatus(ctx, cur, metav1.UpdateOptions{}); err != nil {
			a.log.Warn("writing node status", "err", err)
			continue
		}
		lastReport = a.clock.Now()
	}
}

// nodeStatusChanged compares two statuses, heartbeat times aside.
func nodeStatusChanged(old, next *corev1.NodeStatus) bool {
	o, n := old.DeepCopy(), next.DeepCopy()
	for _, s := range []*corev1.NodeStatus{o, n} {
		for i := range s.Conditions {
			s.Conditions[i].LastHeartbeatTime = metav1.Time{}
		}
	}
	return !equality.Semantic.DeepEqual(o, n)
}
