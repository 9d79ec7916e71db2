package dockercli

import (
	"strings"
	"testing"
)

func TestNetworkCommands(t *testing.T) {
	f := newFakeEngine(t)
	r := runCLI(t, f.host(), "", "network", "create", "--subnet", "10.5.0.0/16", "--gateway", "10.5.0.1", "--internal", "appnet")
	if r.err != nil {
		t.Fatalf("network create: %v", r.err)
	}
	f.mu.Lock()
	n := f.networks[0]
	f.mu.Unlock()
	if r.out != n.ID+"\n" || n.Driver != "bridge" || !n.Internal || n.IPAM.Config[0].Gateway.String() != "10.5.0.1" {
		t.Errorf("created %+v, printed %q", n, r.out)
	}
	r = runCLI(t, f.host(), "", "network", "ls")
	want := "NETWORK ID     NAME      DRIVER    SCOPE\n" + n.ID[:12] + "   appnet    bridge    local\n"
	if r.err != nil || r.out != want {
		t.Errorf("network ls:\n%s\nwant\n%s", r.out, want)
	}
	r = runCLI(t, f.host(), "", "network", "create", "--gateway", "10.0.0.1", "other")
	if r.code != 1 || r.err.Error() != "every ip-range or gateway must have a corresponding subnet" {
		t.Errorf("gateway without subnet: %d %v", r.code, r.err)
	}
	r = runCLI(t, f.host(), "", "network", "inspect", "-f", "{{.Name}} {{.Driver}}", "appnet")
	if r.err != nil || r.out != "appnet bridge\n" {
		t.Errorf("network inspect: %v %q", r.err, r.out)
	}
	r = runCLI(t, f.host(), "", "network", "rm", "appnet", "ghost")
	if r.code != 1 || r.out != "appnet\n" || !strings.Contains(r.errOut, "network ghost not found") {
		t.Errorf("network rm: %d %q %q", r.code, r.out, r.errOut)
	}
	r = runCLI(t, f.host(), "", "network", "rm", "-f", "ghost")
	if r.err != nil {
		t.Errorf("network rm -f of a missing network: %v", r.err)
	}
	r = runCLI(t, f.host(), "", "network", "connect", "--ip", "not-an-ip", "n", "c")
	if r.code != 125 {
		t.Errorf("connect with a bad IP: %d %v", r.code, r.err)
	}
}

func TestVolumeCommands(t *testing.T) {
	f := newFakeEngine(t)
	r := runCLI(t, f.host(), "", "volume", "create", "--label", "app=db", "dbdata")
	if r.err != nil || r.out != "dbdata\n" {
		t.Fatalf("volume create: %v %q", r.err, r.out)
	}
	runCLI(t, f.host(), "", "volume", "create", "cache")
	r = runCLI(t, f.host(), "", "volume", "ls")
	want := "DRIVER    VOLUME NAME\nlocal     cache\nlocal     dbdata\n"
	if r.err != nil || r.out != want {
		t.Errorf("volume ls:\n%s\nwant\n%s", r.out, want)
	}
	r = runCLI(t, f.host(), "", "volume", "ls", "-q")
	if r.out != "cache\ndbdata\n" {
		t.Errorf("volume ls -q: %q", r.out)
	}
	r = runCLI(t, f.host(), "", "volume", "inspect", "-f", "{{.Mountpoint}} {{.Labels.app}}", "dbdata")
	if r.err != nil || r.out != "/var/lib/skiff/volumes/dbdata db\n" {
		t.Errorf("volume inspect: %v %q", r.err, r.out)
	}
	r = runCLI(t, f.host(), "", "volume", "rm", "cache", "ghost")
	if r.code != 1 || r.out != "cache\n" || r.err.Error() != "Error response from daemon: get ghost: no such volume" {
		t.Errorf("volume rm: %d %q %v", r.code, r.out, r.err)
	}
	r = runCLI(t, f.host(), "", "volume", "create", "--name", "a", "b")
	if r.code != 1 || !strings.Contains(r.err.Error(), "conflicting options") {
		t.Errorf("two names: %d %v", r.code, r.err)
	}
}

func TestInfo(t *testing.T) {
	f := newFakeEngine(t)
	r := runCLI(t, f.host(), "", "info")
	if r.err != nil {
		t.Fatal(r.err)
	}
	for _, want := range []string{"Server:\n Containers: 0\n  Running: 0", " Server Version: 0.0-fake\n", " CPUs: 2\n", " Total Memory: 1GiB\n", " Name: fakehost\n", " Host: " + f.host() + "\n"} {
		if !strings.Contains(r.out, want) {
			t.Errorf("info lacks %q:\n%s", want, r.out)
		}
	}
	r = runCLI(t, f.host(), "", "system", "info", "--format", "{{.OSType}}/{{.NCPU}}")
	if r.err != nil || r.out != "linux/2\n" {
		t.Errorf("system info --format: %v %q", r.err, r.out)
	}
}

func TestPruneNetworksAndVolumes(t *testing.T) {
	f := newFakeEngine(t)
	runCLI(t, f.host(), "", "network", "create", "n1")
	runCLI(t, f.host(), "", "volume", "create", "v1")
	r := runCLI(t, f.host(), "y\n", "network", "prune")
	if r.err != nil || !strings.HasSuffix(r.out, "[y/N] Deleted Networks:\nn1\n") {
		t.Errorf("network prune: %v %q", r.err, r.out)
	}
	r = runCLI(t, f.host(), "", "volume", "prune", "-f", "-a")
	if r.err != nil || r.out != "Deleted Volumes:\nv1\n\nTotal reclaimed space: 2.048kB\n" {
		t.Errorf("volume prune: %v %q", r.err, r.out)
	}
	if !strings.Contains(strings.Join(f.requestLog(), "\n"), "/volumes/prune?filters=") {
		t.Errorf("prune -a sent no all filter: %v", f.requestLog())
	}
}

func TestNetworkConnect(t *testing.T) {
	f := newFakeEngine(t)
	seed(f)
	runCLI(t, f.host(), "", "network", "create", "n1")
	for _, args := range [][]string{
		{"network", "connect", "--alias", "db", "--ip", "10.0.0.9", "n1", "web"},
		{"network", "disconnect", "-f", "n1", "web"},
	} {
		if r := runCLI(t, f.host(), "", args...); r.err != nil {
			t.Errorf("%v: %v", args, r.err)
		}
	}
	r := runCLI(t, f.host(), "", "network", "connect", "n1", "ghost")
	if r.code != 1 || !strings.Contains(r.err.Error(), "No such container: ghost") {
		t.Errorf("connect a missing container: %d %v", r.code, r.err)
	}
}
