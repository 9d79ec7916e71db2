package capture_test

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"

	"skiff.dev/skiff/internal/errdefs"
	"skiff.dev/skiff/internal/mesh/capture"
	"skiff.dev/skiff/internal/mesh/meshconfig"
	"skiff.dev/skiff/internal/runtime/runtimetest"
)

func TestMain(m *testing.M) { runtimetest.MainInNetNS(m) }

// lab is the test's network: this test binary's own namespace plays the
// pod (10.0.0.1 on a veth), a second namespace the rest of the world
// (10.0.0.2 and 203.0.113.7 on the peer).
type lab struct {
	pod, peer netns.NsHandle
}

func newLab(t *testing.T) *lab {
	t.Helper()
	if os.Geteuid() != 0 || !runtimetest.InNetNS() {
		t.Skip("needs root (the test runs in a network namespace of its own)")
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	pod, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	peer, err := netns.New()
	if err != nil {
		t.Fatal(err)
	}
	if err := netns.Set(pod); err != nil {
		t.Fatal(err)
	}
	l := &lab{pod: pod, peer: peer}
	t.Cleanup(func() { peer.Close(); pod.Close() })

	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "mesh0"}, PeerName: "mesh1"}
	if err := netlink.LinkAdd(veth); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if l, err := netlink.LinkByName("mesh0"); err == nil {
			_ = netlink.LinkDel(l)
		}
	})
	peerLink, err := netlink.LinkByName("mesh1")
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetNsFd(peerLink, int(peer)); err != nil {
		t.Fatal(err)
	}
	setUp := func(name string, addrs ...string) {
		link, err := netlink.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range addrs {
			addr, _ := netlink.ParseAddr(a)
			if err := netlink.AddrAdd(link, addr); err != nil {
				t.Fatal(err)
			}
		}
		if err := netlink.LinkSetUp(link); err != nil {
			t.Fatal(err)
		}
	}
	setUp("lo")
	setUp("mesh0", "10.0.0.1/24")
	_, world, _ := net.ParseCIDR("203.0.113.0/24")
	if err := netlink.RouteAdd(&netlink.Route{Dst: world, Gw: net.ParseIP("10.0.0.2")}); err != nil {
		t.Fatal(err)
	}
	l.inPeer(t, func() {
		setUp("lo")
		setUp("mesh1", "10.0.0.2/24", "203.0.113.7/32")
	})
	return l
}

// inPeer runs fn on a thread in the peer's namespace.
func (l *lab) inPeer(t *testing.T, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // the thread dies with the goroutine
		if err := netns.Set(l.peer); err != nil {
			t.Error(err)
			return
		}
		fn()
	}()
	<-done
}

// originalDst is the destination a redirected connection was sent to
// (the zero AddrPort when conntrack does not know: no NAT in the
// namespace).
func originalDst(c net.Conn) netip.AddrPort {
	raw, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		return netip.AddrPort{}
	}
	var sa *unix.IPv6Mreq
	var serr error
	if err := raw.Control(func(fd uintptr) {
		sa, serr = unix.GetsockoptIPv6Mreq(int(fd), unix.SOL_IP, unix.SO_ORIGINAL_DST)
	}); err != nil || serr != nil {
		return netip.AddrPort{}
	}
	b := sa.Multiaddr
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), uint16(b[2])<<8|uint16(b[3]))
}

// listen accepts connections on addr and reports each one's original
// destination.
func listen(t *testing.T, addr string) <-chan netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got := make(chan netip.AddrPort, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			got <- originalDst(c)
			c.Close()
		}
	}()
	return got
}

func expect(t *testing.T, what string, ch <-chan netip.AddrPort, want string) {
	t.Helper()
	select {
	case got := <-ch:
		if got.String() != want {
			t.Errorf("%s: original destination %s, want %s", what, got, want)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("%s: no connection arrived", what)
	}
}

func expectNone(t *testing.T, what string, ch <-chan netip.AddrPort) {
	t.Helper()
	select {
	case got := <-ch:
		t.Errorf("%s: unexpected connection to %s", what, got)
	default:
	}
}

func dial(t *testing.T, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp4", addr, 3*time.Second)
	if err != nil {
		t.Errorf("dial %s: %v", addr, err)
		return
	}
	c.Close()
}

// dialAsProxy connects to addr as the proxy's uid and gid would.
func dialAsProxy(t *testing.T, addr netip.AddrPort) {
	t.Helper()
	cmd := exec.Command(runtimetest.BusyboxPath, "nc", "-w", "2", addr.Addr().String(), fmt.Sprint(addr.Port()))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: meshconfig.ProxyUID, Gid: meshconfig.ProxyGID}}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("nc %s as %d: %v: %s", addr, meshconfig.ProxyUID, err, out)
	}
}

// TestCaptureInKernel installs the table in the lab's pod namespace and
// shows each path of Istio's capture with real connections.
func TestCaptureInKernel(t *testing.T) {
	l := newLab(t)
	// Not /proc/<pid>/ns/net: the main thread may have served inPeer and
	// stayed in the peer's namespace (Go parks, not kills, a main thread
	// whose locked goroutine exits).
	self := fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), int(l.pod))
	spec, err := capture.SpecFor(podWith(map[string]string{meshconfig.ExcludeOutboundPorts: "9999"}))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // idempotent
		if err := capture.Install(self, spec); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = capture.Remove(self) })

	outbound := listen(t, fmt.Sprintf("0.0.0.0:%d", meshconfig.OutboundPort))
	inbound := listen(t, fmt.Sprintf("0.0.0.0:%d", meshconfig.InboundPort))
	health := listen(t, fmt.Sprintf("0.0.0.0:%d", meshconfig.HealthPort))
	local := listen(t, "127.0.0.1:8081")

	t.Run("outbound goes to 15001", func(t *testing.T) {
		dial(t, "203.0.113.7:80")
		expect(t, "outbound", outbound, "203.0.113.7:80")
	})
	t.Run("localhost passes", func(t *testing.T) {
		dial(t, "127.0.0.1:8081")
		expect(t, "localhost", local, "127.0.0.1:8081")
		expectNone(t, "localhost", outbound)
	})
	t.Run("inbound goes to 15006", func(t *testing.T) {
		l.inPeer(t, func() { dial(t, "10.0.0.1:8080") })
		expect(t, "inbound", inbound, "10.0.0.1:8080")
	})
	t.Run("health port is not captured", func(t *testing.T) {
		l.inPeer(t, func() { dial(t, fmt.Sprintf("10.0.0.1:%d", meshconfig.HealthPort)) })
		expect(t, "health", health, fmt.Sprintf("10.0.0.1:%d", meshconfig.HealthPort))
		expectNone(t, "health", inbound)
	})
	t.Run("the proxy's own outbound passes", func(t *testing.T) {
		peerLn := make(chan netip.AddrPort, 1)
		var port uint16
		l.inPeer(t, func() {
			ln, err := net.Listen("tcp4", "203.0.113.7:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ln.Close() })
			port = uint16(ln.Addr().(*net.TCPAddr).Port)
			go func() {
				if c, err := ln.Accept(); err == nil {
					peerLn <- netip.MustParseAddrPort(c.LocalAddr().String())
					c.Close()
				}
			}()
		})
		dialAsProxy(t, netip.AddrPortFrom(netip.MustParseAddr("203.0.113.7"), port))
		expect(t, "proxy outbound", peerLn, fmt.Sprintf("203.0.113.7:%d", port))
		expectNone(t, "proxy outbound", outbound)
	})
	t.Run("the proxy calling its own pod is inbound", func(t *testing.T) {
		dialAsProxy(t, netip.MustParseAddrPort("10.0.0.1:8080"))
		expect(t, "proxy to its pod", inbound, "10.0.0.1:8080")
	})
	t.Run("excluded outbound port passes", func(t *testing.T) {
		c, err := net.DialTimeout("tcp4", "203.0.113.7:9999", time.Second)
		if err == nil {
			c.Close()
		}
		expectNone(t, "excluded port", outbound)
	})

	if ok, err := capture.Installed(self); err != nil || !ok {
		t.Fatalf("Installed = %v, %v", ok, err)
	}
	if err := capture.Remove(self); err != nil {
		t.Fatal(err)
	}
	if err := capture.Remove(self); err != nil {
		t.Fatalf("second Remove: %v", err)
	}
	if ok, _ := capture.Installed(self); ok {
		t.Fatal("table still there after Remove")
	}
	dial(t, "127.0.0.1:8081")
	select {
	case <-local:
	case <-time.After(5 * time.Second):
		t.Error("localhost: no connection arrived after Remove")
	}
	c, err := net.DialTimeout("tcp4", "203.0.113.7:80", time.Second)
	if err == nil {
		c.Close()
	}
	expectNone(t, "after Remove", outbound)
}

// TestNode sets a meshed pod up and tears it down in the lab's pod
// namespace: the mesh directory and the table come and go together.
func TestNode(t *testing.T) {
	l := newLab(t)
	nsPath := fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), int(l.pod))
	n := capture.NewNode(t.TempDir(), slog.New(slog.DiscardHandler))
	pod := podWith(map[string]string{meshconfig.StatusAnnotation: "{}"})
	pod.UID = "uid-1"
	pod.Spec.Volumes = []corev1.Volume{{Name: meshconfig.VolumeName, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	if !n.Wants(pod) {
		t.Fatal("Wants = false for an injected pod")
	}
	if dir, ok := n.VolumeDir(pod, &pod.Spec.Volumes[0]); !ok || dir != n.PodDir("uid-1") {
		t.Fatalf("VolumeDir = %q, %v", dir, ok)
	}
	for range 2 {
		if err := n.SetUp(t.Context(), pod, nsPath); err != nil {
			t.Fatal(err)
		}
	}
	if st, err := os.Stat(n.PodDir("uid-1")); err != nil || !st.IsDir() {
		t.Fatalf("mesh directory: %v", err)
	}
	if ok, err := capture.Installed(nsPath); err != nil || !ok {
		t.Fatalf("Installed = %v, %v", ok, err)
	}
	for range 2 {
		if err := n.TearDown(t.Context(), "uid-1", nsPath); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := os.Stat(n.PodDir("uid-1")); !os.IsNotExist(err) {
		t.Errorf("mesh directory still there: %v", err)
	}
	if ok, _ := capture.Installed(nsPath); ok {
		t.Error("table still there after TearDown")
	}

	hostNet := pod.DeepCopy()
	hostNet.Spec.HostNetwork = true
	if n.Wants(hostNet) {
		t.Error("Wants a host-network pod")
	}
	if err := n.SetUp(t.Context(), hostNet, ""); !errors.Is(err, errdefs.ErrInvalid) {
		t.Errorf("SetUp of a host-network pod: %v", err)
	}
}
