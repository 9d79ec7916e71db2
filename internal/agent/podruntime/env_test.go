package podruntime

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"skiff.dev/skiff/internal/image/content"
	"skiff.dev/skiff/internal/image/images"
	"skiff.dev/skiff/internal/image/snapshot"
	"skiff.dev/skiff/internal/network/bridge"
	"skiff.dev/skiff/internal/network/netns"
	"skiff.dev/skiff/internal/runtime"
	"skiff.dev/skiff/internal/runtime/runtimetest"
)

// Pods need bridges, veths and nftables rules: as root, this test binary
// re-executes itself in a network namespace of its own (unshare -n), the
// "node", so nothing touches the host's network.

func TestMain(m *testing.M) { runtimetest.MainInNetNS(m) }

// The test world: the test's network namespace is the node; a veth
// uplink joins it to an "internet" namespace holding 203.0.113.1.
const (
	nodeUplinkIP = "192.0.2.2"
	inetUplinkIP = "192.0.2.1"
	inetServerIP = "203.0.113.1"
	uplinkName   = "up0"
)

// env is a started Manager over temporary directories with a busybox
// image named "busybox", in the node namespace.
type env struct {
	t      testing.TB
	dir    string
	inet   string // the internet's netns
	opts   Options
	m      *Manager
	nets   *bridge.Manager
	images *images.Service
}

// with is e for a subtest: its helpers fail t.
func (e *env) with(t testing.TB) *env {
	c := *e
	c.t = t
	return &c
}

func newEnv(t testing.TB) *env {
	t.Helper()
	runtimetest.SkipUnlessRoot(t)
	if !runtimetest.InNetNS() {
		t.Skip("skipping: needs its own network namespace (unshare from util-linux)")
	}
	shim := runtimetest.ShimBinary(t)
	dir := t.TempDir()
	e := &env{t: t, dir: dir, inet: filepath.Join(dir, "inet")}
	e.makeUplink()

	store := content.New(filepath.Join(dir, "images"))
	if err := store.Init(); err != nil {
		t.Fatal(err)
	}
	e.images = images.New(store)
	if _, err := e.images.Import(context.Background(), bytes.NewReader(runtimetest.BusyboxTar(t)), "busybox"); err != nil {
		t.Fatal(err)
	}
	runDir := filepath.Join(dir, "run")
	e.opts = Options{
		DataDir:        filepath.Join(dir, "data"),
		RunDir:         runDir,
		Images:         e.images,
		Snapshots:      snapshot.New(filepath.Join(dir, "layers"), store),
		Runtime:        runtime.New(runtime.Options{StateDir: filepath.Join(runDir, "runtime"), ShimPath: shim}),
		LogDir:         filepath.Join(dir, "logs"),
		HostResolvConf: filepath.Join(dir, "node-resolv.conf"),
		Logger:         testLogger(t),
	}
	if err := os.WriteFile(e.opts.HostResolvConf, []byte("nameserver 192.0.2.53\nsearch node.example\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.start()
	t.Cleanup(e.removeAll)
	return e
}

// start starts a bridge Manager and a Manager on e's directories, as the
// agent does when it starts.
func (e *env) start() {
	e.t.Helper()
	e.nets = bridge.New(bridge.Options{StateDir: filepath.Join(e.dir, "networks"), Logger: slog.New(slog.DiscardHandler)})
	if err := e.nets.Start(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	opts := e.opts
	opts.Network = e.nets
	e.m = New(opts)
	if err := e.m.Start(context.Background()); err != nil {
		e.t.Fatal(err)
	}
}

// restart is an agent restart: new runtime, bridge Manager and Manager on
// the same directories; the shims keep running.
func (e *env) restart() {
	e.t.Helper()
	e.nets.Close()
	e.opts.Runtime = runtime.New(runtime.Options{StateDir: filepath.Join(e.opts.RunDir, "runtime"), ShimPath: runtimetest.ShimBinary(e.t)})
	e.start()
}

// removeAll removes every container and sandbox and the pods network, and
// checks that nothing is left.
func (e *env) removeAll() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	all, err := e.m.List(ctx, "")
	if err != nil {
		e.t.Errorf("cleanup: List: %v", err)
	}
	for _, c := range all {
		if err := e.m.Remove(ctx, c.ID); err != nil {
			e.t.Errorf("cleanup: Remove %s: %v", c.Name, err)
		}
	}
	sandboxes := e.m.Sandboxes()
	for _, sb := range sandboxes {
		if err := e.m.RemoveSandbox(ctx, sb.PodUID); err != nil {
			e.t.Errorf("cleanup: RemoveSandbox %s: %v", sb.Name, err)
		}
	}
	for _, sb := range sandboxes {
		e.checkNothingLeft(sb, containerIDs(all))
	}
	if err := e.nets.RemoveNetwork(ctx, PodNetwork); err != nil {
		e.t.Errorf("cleanup: remove the pods network: %v", err)
	}
	e.nets.Close()
}

func containerIDs(cs []ContainerStatus) []string {
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	return ids
}

// makeUplink creates the internet namespace, the uplink and a "who am I"
// HTTP server at 203.0.113.1:80 answering with the client's address.
func (e *env) makeUplink() {
	t := e.t
	if err := netns.Create(e.inet); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if l, err := netlink.LinkByName(uplinkName); err == nil {
			_ = netlink.LinkDel(l)
		}
		_ = netns.Delete(e.inet)
	})
	inetFile, err := os.Open(e.inet)
	if err != nil {
		t.Fatal(err)
	}
	defer inetFile.Close()
	up := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: uplinkName}, PeerName: "up1", PeerNamespace: netlink.NsFd(inetFile.Fd())}
	if err := netlink.LinkAdd(up); err != nil {
		t.Fatalf("uplink: %v", err)
	}
	l, err := netlink.LinkByName(uplinkName)
	if err != nil {
		t.Fatal(err)
	}
	must(t, netlink.AddrAdd(l, mustAddr(nodeUplinkIP+"/24")))
	must(t, netlink.LinkSetUp(l))
	_, dst, _ := net.ParseCIDR("203.0.113.0/24")
	must(t, netlink.RouteAdd(&netlink.Route{Dst: dst, Gw: net.ParseIP(inetUplinkIP)}))
	var ln net.Listener
	err = netns.Do(e.inet, func() error {
		l, err := netlink.LinkByName("up1")
		if err != nil {
			return err
		}
		for _, a := range []string{inetUplinkIP + "/24", inetServerIP + "/32"} {
			if err := netlink.AddrAdd(l, mustAddr(a)); err != nil {
				return err
			}
		}
		if err := netlink.LinkSetUp(l); err != nil {
			return err
		}
		if err := netlink.RouteAdd(&netlink.Route{Gw: net.ParseIP(nodeUplinkIP)}); err != nil {
			return err
		}
		ln, err = net.Listen("tcp", inetServerIP+":80")
		return err
	})
	if err != nil {
		t.Fatalf("internet: %v", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		fmt.Fprintln(w, host)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mustAddr(s string) *netlink.Addr {
	a, err := netlink.ParseAddr(s)
	if err != nil {
		panic(err)
	}
	return a
}

// runPod creates a sandbox for a new pod named name.
func (e *env) runPod(name string, mod func(*SandboxConfig)) Sandbox {
	e.t.Helper()
	c := SandboxConfig{PodUID: newUID(), Namespace: "default", Name: name}
	if mod != nil {
		mod(&c)
	}
	sb, err := e.m.RunSandbox(context.Background(), c)
	if err != nil {
		e.t.Fatalf("RunSandbox %s: %v", name, err)
	}
	return sb
}

// run creates and starts a busybox container in the pod.
func (e *env) run(sb Sandbox, name string, cmd ...string) string {
	e.t.Helper()
	return e.runConfig(ContainerConfig{PodUID: sb.PodUID, Name: name, Image: "busybox", Command: cmd})
}

func (e *env) runConfig(c ContainerConfig) string {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id, err := e.m.CreateAndStart(ctx, c)
	if err != nil {
		e.t.Fatalf("CreateAndStart %s: %v", c.Name, err)
	}
	return id
}

// exec runs cmd in the container and returns its stdout, failing the
// test on an error or a non-zero exit.
func (e *env) exec(id string, cmd ...string) string {
	e.t.Helper()
	out, code, err := e.tryExec(id, cmd...)
	if err != nil || code != 0 {
		e.t.Fatalf("exec %q: exit %d, err %v, output %q", cmd, code, err, out)
	}
	return out
}

func (e *env) tryExec(id string, cmd ...string) (string, int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code, err := e.m.Exec(ctx, id, cmd, runtime.Streams{Stdout: &stdout, Stderr: &stderr}, false, nil)
	return stdout.String() + stderr.String(), code, err
}

// eventuallyExec retries cmd until it exits 0 (a server still starting).
func (e *env) eventuallyExec(id string, cmd ...string) string {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		out, code, err := e.tryExec(id, cmd...)
		if err == nil && code == 0 {
			return out
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("exec %q: exit %d, err %v, output %q", cmd, code, err, out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (e *env) status(id string) ContainerStatus {
	e.t.Helper()
	st, err := e.m.Status(context.Background(), id)
	if err != nil {
		e.t.Fatalf("Status: %v", err)
	}
	return st
}

// wait waits for the container's exit.
func (e *env) wait(id string) ContainerStatus {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := e.m.Wait(ctx, id)
	if err != nil {
		e.t.Fatalf("Wait: %v", err)
	}
	return st
}

// checkNothingLeft checks that a removed sandbox left no namespace files,
// mounts, veths, cgroups or shims.
func (e *env) checkNothingLeft(sb Sandbox, containers []string) {
	e.t.Helper()
	if _, err := os.Stat(e.m.sandboxRunDir(sb.ID)); !errors.Is(err, fs.ErrNotExist) {
		e.t.Errorf("sandbox directory left: %v", err)
	}
	for _, p := range []string{sb.NetNS, sb.IPCNS, sb.UTSNS, sb.PIDNS, sb.ShmPath} {
		if p == "" {
			continue
		}
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			e.t.Errorf("%s left: %v", p, err)
		}
	}
	for _, mp := range mountsUnder(e.dir) {
		if mp != e.inet {
			e.t.Errorf("mount left: %s", mp)
		}
	}
	links, err := netlink.LinkList()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, l := range links {
		if l.Type() == "veth" && l.Attrs().Name != uplinkName {
			e.t.Errorf("veth left: %s", l.Attrs().Name)
		}
	}
	dirs, _ := filepath.Glob("/sys/fs/cgroup/*/skiff/pods/pod" + sb.PodUID)
	for _, d := range dirs {
		e.t.Errorf("cgroup left: %s", d)
	}
	for _, id := range containers {
		deadline := time.Now().Add(5 * time.Second)
		for len(shimPids(id)) > 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		for _, pid := range shimPids(id) {
			e.t.Errorf("shim of %s left: pid %d", id, pid)
		}
	}
}

// mountsUnder lists the mount points below dir.
func mountsUnder(dir string) []string {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && strings.HasPrefix(fields[4], dir+"/") {
			out = append(out, fields[4])
		}
	}
	return out
}

// shimPids are the live shims serving container id.
func shimPids(id string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, d := range entries {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + d.Name() + "/cmdline")
		if err != nil || !strings.Contains(string(cmdline), "\x00--id\x00"+id+"\x00") {
			continue
		}
		if st, err := os.ReadFile("/proc/" + d.Name() + "/stat"); err == nil {
			if i := bytes.LastIndexByte(st, ')'); i > 0 && len(st) > i+2 && st[i+2] == 'Z' {
				continue
			}
		}
		pids = append(pids, pid)
	}
	return pids
}

// processStart is a process's start time in clock ticks since boot.
func processStart(t testing.TB, pid int) string {
	t.Helper()
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatalf("process %d: %v", pid, err)
	}
	i := bytes.LastIndexByte(st, ')')
	fields := strings.Fields(string(st[i+2:]))
	return fields[19] // field 22 of stat; fields here start at 3
}

var uidSeq struct {
	sync.Mutex
	n int
}

// newUID returns a pod UID unique on this machine (cgroup paths are
// global).
func newUID() string {
	uidSeq.Lock()
	uidSeq.n++
	n := uidSeq.n
	uidSeq.Unlock()
	id := newID()
	return fmt.Sprintf("%s-%s-%04d-%d", id[:8], id[8:12], n, os.Getpid())
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	if _, ok := t.(*testing.B); ok {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(testWriter{t}, nil))
}
