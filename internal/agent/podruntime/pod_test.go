package podruntime

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"skiff.dev/skiff/internal/runtime"
	"skiff.dev/skiff/internal/runtime/oci"
)

// webCmd serves /www (index.html "hello from web") on port 8080.
var webCmd = []string{"sh", "-c", "mkdir -p /www && echo hello from web > /www/index.html && exec httpd -f -p 8080 -h /www"}

// TestContainersShareThePod: two containers of one pod talk over
// localhost, see one hostname and IPC namespace, and each has its own PID
// 1 unless the pod shares its process namespace.
func TestContainersShareThePod(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name  string
		share bool
	}{
		{"own PID namespaces", false},
		{"shared PID namespace", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := e.with(t)
			sb := e.runPod("web-"+map[bool]string{false: "own", true: "shared"}[tc.share], func(c *SandboxConfig) {
				c.ShareProcessNamespace = tc.share
			})
			web := e.run(sb, "web", webCmd...)
			client := e.run(sb, "client", "sleep", "1000")

			if got := e.eventuallyExec(client, "wget", "-qO-", "http://127.0.0.1:8080/"); got != "hello from web\n" {
				t.Errorf("client got %q over localhost", got)
			}
			var ipcNS []string
			for _, id := range []string{web, client} {
				if got := strings.TrimSpace(e.exec(id, "hostname")); got != sb.Name {
					t.Errorf("hostname %q, want the pod's name %q", got, sb.Name)
				}
				ipcNS = append(ipcNS, strings.TrimSpace(e.exec(id, "readlink", "/proc/self/ns/ipc")))
			}
			var st syscall.Stat_t
			must(t, syscall.Stat(sb.IPCNS, &st))
			want := fmt.Sprintf("ipc:[%d]", st.Ino)
			if ipcNS[0] != want || ipcNS[1] != want {
				t.Errorf("IPC namespaces %q, want both the sandbox's %s", ipcNS, want)
			}

			ps := e.exec(client, "ps", "-o", "pid,args")
			init1 := strings.TrimSpace(e.exec(client, "cat", "/proc/1/cmdline"))
			if tc.share {
				if !strings.Contains(ps, "httpd") {
					t.Errorf("shared PID namespace: the client does not see httpd:\n%s", ps)
				}
				if !strings.HasPrefix(init1, "httpd") {
					t.Errorf("shared PID namespace: PID 1 is %q, want the first container's httpd", init1)
				}
			} else {
				if strings.Contains(ps, "httpd") {
					t.Errorf("own PID namespace: the client sees httpd:\n%s", ps)
				}
				if !strings.HasPrefix(init1, "sleep") {
					t.Errorf("own PID namespace: the client's PID 1 is %q, want sleep", init1)
				}
			}
			hosts := e.exec(client, "cat", "/etc/hosts")
			if !strings.Contains(hosts, sb.IP+"\t"+sb.Name+"\n") {
				t.Errorf("/etc/hosts lacks the pod's IP and name:\n%s", hosts)
			}
		})
	}
}

// TestPodNetwork: pods reach each other by pod IP without NAT, and the
// outside through the node's uplink address.
func TestPodNetwork(t *testing.T) {
	e := newEnv(t)
	// A CGI script that answers with the client's address, as a volume.
	www := t.TempDir()
	must(t, os.MkdirAll(filepath.Join(www, "cgi-bin"), 0o755))
	script := "#!/bin/sh\necho Content-Type: text/plain\necho\necho $REMOTE_ADDR\n"
	must(t, os.WriteFile(filepath.Join(www, "cgi-bin", "ip"), []byte(script), 0o755))

	a := e.runPod("pod-a", nil)
	b := e.runPod("pod-b", nil)
	if a.IP == "" || b.IP == "" || a.IP == b.IP {
		t.Fatalf("pod IPs %q and %q", a.IP, b.IP)
	}
	if !strings.HasPrefix(a.IP, "10.244.0.") {
		t.Errorf("pod IP %s is not from the pod CIDR %s", a.IP, DefaultPodCIDR)
	}
	e.runConfig(ContainerConfig{
		PodUID: a.PodUID, Name: "whoami", Image: "busybox",
		Command: []string{"httpd", "-f", "-p", "8080", "-h", "/www"},
		Mounts:  []oci.Mount{{Destination: "/www", Source: www, ReadOnly: true}},
	})
	client := e.run(b, "client", "sleep", "1000")

	got := strings.TrimSpace(e.eventuallyExec(client, "wget", "-qO-", "http://"+a.IP+":8080/cgi-bin/ip"))
	// httpd listens dual-stack: "[::ffff:10.244.0.3]".
	if addr, err := netip.ParseAddr(strings.Trim(got, "[]")); err == nil {
		got = addr.Unmap().String()
	}
	if got != b.IP {
		t.Errorf("pod A saw pod B come from %q, want its pod IP %s (no NAT)", got, b.IP)
	}
	got = strings.TrimSpace(e.exec(client, "wget", "-qO-", "http://"+inetServerIP+"/"))
	if got != nodeUplinkIP {
		t.Errorf("the internet saw the pod come from %q, want the node's uplink address %s", got, nodeUplinkIP)
	}
}

// TestExecAndPortForward: ps in an exec shows the container's processes;
// a port-forward reaches a server on the pod's loopback.
func TestExecAndPortForward(t *testing.T) {
	e := newEnv(t)
	sb := e.runPod("web", nil)
	web := e.run(sb, "web", webCmd...)

	e.eventuallyExec(web, "wget", "-qO-", "http://127.0.0.1:8080/")
	ps := e.exec(web, "ps", "-o", "pid,args")
	if !strings.Contains(ps, "1 httpd -f -p 8080") || !strings.Contains(ps, "ps -o pid,args") {
		t.Errorf("ps in the container:\n%s", ps)
	}
	if lines := strings.Count(strings.TrimSpace(ps), "\n"); lines != 2 {
		t.Errorf("ps shows %d processes, want httpd and ps:\n%s", lines, ps)
	}
	out, code, err := e.tryExec(web, "sh", "-c", "exit 7")
	if err != nil || code != 7 {
		t.Errorf("exec exit 7: code %d, err %v (%s)", code, err, out)
	}
	if _, _, err := e.tryExec(web, "nope"); err == nil || !strings.Contains(err.Error(), `exec: "nope": executable file not found in $PATH`) {
		t.Errorf("exec of a missing program: %v", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	client, server := net.Pipe()
	done := make(chan error, 1)
	go func() {
		err := e.m.PortForward(ctx, sb.PodUID, 8080, server)
		server.Close() // the caller ends the stream
		done <- err
	}()
	go func() { _, _ = io.WriteString(client, "GET / HTTP/1.0\r\nHost: x\r\n\r\n") }()
	resp, err := io.ReadAll(client)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(resp), "HTTP/1.") || !strings.HasSuffix(string(resp), "hello from web\n") {
		t.Errorf("port-forward answer:\n%s", resp)
	}
	if err := <-done; err != nil {
		t.Errorf("PortForward: %v", err)
	}
	if err := e.m.PortForward(ctx, sb.PodUID, 9, server); err == nil {
		t.Error("PortForward to a closed port succeeded")
	}
}

// TestSandboxFiles: RunSandbox is idempotent, and writes /etc/hosts and
// resolv.conf as the kubelet does.
func TestSandboxFiles(t *testing.T) {
	e := newEnv(t)
	uid := newUID()
	cfg := SandboxConfig{
		PodUID: uid, Namespace: "ns1", Name: "db-0", Hostname: "db-0", HostDomain: "db.ns1.svc.cluster.local",
		DNS: []string{"10.96.0.10"}, Searches: []string{"ns1.svc.cluster.local", "svc.cluster.local"}, DNSOptions: []string{"ndots:5"},
		HostAliases: []corev1.HostAlias{{IP: "10.1.2.3", Hostnames: []string{"foo.local", "bar.local"}}},
	}
	first, err := e.m.RunSandbox(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	again, err := e.m.RunSandbox(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != first.ID || again.IP != first.IP {
		t.Errorf("RunSandbox again: %s/%s, want %s/%s", again.ID, again.IP, first.ID, first.IP)
	}
	got, ok := e.m.Sandbox(uid)
	if !ok || !got.Ready || got.ID != first.ID {
		t.Errorf("Sandbox: %+v %v", got, ok)
	}
	hosts, _ := os.ReadFile(first.HostsPath)
	for _, want := range []string{
		"127.0.0.1\tlocalhost\n",
		first.IP + "\tdb-0.db.ns1.svc.cluster.local\tdb-0\n",
		"# Entries added by HostAliases.\n10.1.2.3\tfoo.local\tbar.local\n",
	} {
		if !strings.Contains(string(hosts), want) {
			t.Errorf("/etc/hosts lacks %q:\n%s", want, hosts)
		}
	}
	resolv, _ := os.ReadFile(first.ResolvPath)
	if want := "nameserver 10.96.0.10\nsearch ns1.svc.cluster.local svc.cluster.local\noptions ndots:5\n"; string(resolv) != want {
		t.Errorf("resolv.conf:\n%s\nwant:\n%s", resolv, want)
	}
	id := e.run(first, "c", "sleep", "1000")
	if got := e.exec(id, "cat", "/etc/resolv.conf"); got != string(resolv) {
		t.Errorf("the container's resolv.conf:\n%s", got)
	}
	if got := e.exec(id, "cat", "/etc/hostname"); got != "db-0\n" {
		t.Errorf("the container's /etc/hostname: %q", got)
	}

	// hostNetwork: the node's namespaces and resolver.
	hn := e.runPod("hostnet", func(c *SandboxConfig) { c.HostNetwork = true })
	if hn.NetNS != "" || hn.UTSNS != "" || hn.IP != "" {
		t.Errorf("hostNetwork sandbox: %+v", hn)
	}
	hid := e.run(hn, "c", "sleep", "1000")
	node, _ := os.Hostname()
	if got := strings.TrimSpace(e.exec(hid, "hostname")); got != node {
		t.Errorf("hostNetwork hostname %q, want the node's %q", got, node)
	}
	if got := e.exec(hid, "cat", "/etc/resolv.conf"); got != "nameserver 192.0.2.53\nsearch node.example\n" {
		t.Errorf("hostNetwork resolv.conf: %q", got)
	}
	if links := e.exec(hid, "ip", "link"); !strings.Contains(links, uplinkName) {
		t.Errorf("hostNetwork pod does not see the node's interfaces:\n%s", links)
	}
}

// TestAttachAndStats: attached stdin reaches a container started with
// Stdin, and its stats come from its cgroup.
func TestAttachAndStats(t *testing.T) {
	e := newEnv(t)
	sb := e.runPod("attach", nil)
	id := e.runConfig(ContainerConfig{PodUID: sb.PodUID, Name: "cat", Image: "busybox", Command: []string{"cat"}, Stdin: true, StdinOnce: true})

	stats, err := e.m.Stats(context.Background(), id)
	if err != nil || stats.MemoryStats.Usage.Usage == 0 {
		t.Errorf("Stats: %+v, %v", stats, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out strings.Builder
	if err := e.m.Attach(ctx, id, runtime.Streams{Stdin: strings.NewReader("hello\n"), Stdout: &out}); err != nil {
		t.Fatalf("Attach: %v", err)
	}
	if out.String() != "hello\n" {
		t.Errorf("attached output %q", out.String())
	}
	if st := e.wait(id); st.ExitCode != 0 {
		t.Errorf("cat exited %+v after its stdin closed", st)
	}
	if _, err := e.m.Stats(context.Background(), id); err == nil {
		t.Error("Stats of an exited container succeeded")
	}
}

// TestBrokenSandboxIsRebuilt: a sandbox whose namespaces went away (as
// after a reboot) reports not ready, and RunSandbox makes a new one.
func TestBrokenSandboxIsRebuilt(t *testing.T) {
	e := newEnv(t)
	uid := newUID()
	sb := e.runPod("phoenix", func(c *SandboxConfig) { c.PodUID = uid })
	must(t, removeNSFile(sb.UTSNS))
	if got, ok := e.m.Sandbox(uid); !ok || got.Ready {
		t.Fatalf("a broken sandbox: %+v, %v", got, ok)
	}
	again := e.runPod("phoenix", func(c *SandboxConfig) { c.PodUID = uid })
	if again.ID == sb.ID || !again.Ready {
		t.Errorf("RunSandbox of a broken sandbox: %+v", again)
	}
	if eps := e.nets.Endpoints(PodNetwork); len(eps) != 1 || eps[0].ContainerID != again.ID {
		t.Errorf("endpoints on the pods network: %+v", eps)
	}
	if _, err := os.Stat(e.m.sandboxRunDir(sb.ID)); !os.IsNotExist(err) {
		t.Errorf("the broken sandbox's directory is left: %v", err)
	}
	id := e.run(again, "c", "hostname")
	if st := e.wait(id); st.ExitCode != 0 {
		t.Errorf("a container in the rebuilt sandbox: %+v", st)
	}
}
