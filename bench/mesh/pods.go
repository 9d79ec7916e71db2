package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// podPair is two network namespaces standing for two pods, client and
// server, joined by a veth pair (10.99.N.1 and 10.99.N.2), each with the
// sidecar's nftables capture: outbound TCP from anyone but the proxy's
// uid to port 15001, inbound TCP to 15006, except directPort and the
// sidecar's own ports. The server pod runs the backend on appPort
// (captured) and directPort (not). All of it lives inside the harness's
// own network namespace, and goes away with its processes.
type podPair struct {
	name            string
	client, server  *proc // the processes holding the namespaces
	clientIP, svrIP net.IP
	clientNS, svrNS string // /proc/PID/ns/net
}

func newPodPair(ctx context.Context, o options, ps *procSet, name string, n int) (*podPair, error) {
	pp := &podPair{name: name, clientIP: net.IPv4(10, 99, byte(n), 1), svrIP: net.IPv4(10, 99, byte(n), 2)}
	var err error
	if pp.client, err = ps.start(ctx, o, name+"-client-netns", "unshare", "--net", "sleep", "infinity"); err != nil {
		return nil, err
	}
	if pp.server, err = ps.start(ctx, o, name+"-server-netns", "unshare", "--net", "sleep", "infinity"); err != nil {
		return nil, err
	}
	pp.clientNS = fmt.Sprintf("/proc/%d/ns/net", pp.client.cmd.Process.Pid)
	pp.svrNS = fmt.Sprintf("/proc/%d/ns/net", pp.server.cmd.Process.Pid)
	// unshare has made its namespace once it has exec'd sleep.
	for range 100 {
		if a, b := nsOf(pp.clientNS), nsOf(pp.svrNS); a != "" && a != nsOf("/proc/self/ns/net") && b != "" && b != nsOf("/proc/self/ns/net") {
			break
		}
		sleepCtx(ctx, 10*time.Millisecond)
	}
	cv, sv := fmt.Sprintf("bc%d", n), fmt.Sprintf("bs%d", n)
	steps := [][]string{
		{"ip", "link", "add", cv, "type", "veth", "peer", "name", sv},
		{"ip", "link", "set", cv, "netns", fmt.Sprint(pp.client.cmd.Process.Pid)},
		{"ip", "link", "set", sv, "netns", fmt.Sprint(pp.server.cmd.Process.Pid)},
	}
	for _, s := range steps {
		if err := command(ctx, "", nil, s...); err != nil {
			return nil, err
		}
	}
	for _, side := range []struct {
		ns, dev string
		ip      net.IP
	}{{pp.clientNS, cv, pp.clientIP}, {pp.svrNS, sv, pp.svrIP}} {
		for _, s := range [][]string{
			{"ip", "link", "set", "lo", "up"},
			{"ip", "addr", "add", side.ip.String() + "/24", "dev", side.dev},
			{"ip", "link", "set", side.dev, "up"},
		} {
			if err := command(ctx, side.ns, nil, s...); err != nil {
				return nil, err
			}
		}
		if err := command(ctx, side.ns, []byte(captureRules), "nft", "-f", "-"); err != nil {
			return nil, err
		}
	}
	for _, port := range []int{appPort, directPort} {
		if _, err := ps.start(ctx, o, fmt.Sprintf("%s-backend-%d", name, port), "nsenter", "--net="+pp.svrNS,
			filepath.Join(o.bin, "backend"), "-listen", fmt.Sprintf("0.0.0.0:%d", port), "-size", fmt.Sprint(o.size)); err != nil {
			return nil, err
		}
	}
	return pp, nil
}

// captureRules is the sidecar's capture, as the node agent installs it
// in a meshed pod (Istio's rules, simplified): the proxy's uid 1337 and
// loopback are not captured outbound, the sidecar's own ports and
// directPort not inbound.
var captureRules = fmt.Sprintf(`table ip skiff-bench-capture {
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    tcp dport { 15000-15099, %d } return
    meta l4proto tcp redirect to :15006
  }
  chain output {
    type nat hook output priority -100; policy accept;
    meta skuid 1337 return
    oifname "lo" return
    tcp dport %d return
    meta l4proto tcp redirect to :15001
  }
}
`, directPort, directPort)

// startInNS starts a process in a namespace, as the proxy's uid when
// proxyUID.
func (ps *procSet) startInNS(ctx context.Context, o options, ns string, proxyUID bool, name, bin string, args ...string) (*proc, error) {
	a := []string{"--net=" + ns}
	if proxyUID {
		a = append(a, "--setuid=1337", "--setgid=1337")
	}
	return ps.start(ctx, o, name, "nsenter", append(append(a, bin), args...)...)
}

// command runs a command (in namespace ns unless empty) to completion.
func command(ctx context.Context, ns string, stdin []byte, args ...string) error {
	if ns != "" {
		args = append([]string{"nsenter", "--net=" + ns}, args...)
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

func nsOf(path string) string {
	s, _ := os.Readlink(path)
	return s
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
