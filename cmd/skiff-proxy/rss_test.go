package main

import (
	"bufio"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"skiff.dev/skiff/internal/mesh/meshconfig"
	"skiff.dev/skiff/internal/mesh/proxy"
)

// BenchmarkIdleRSS builds skiff-proxy as `make build` does, runs it in a
// network namespace of its own (so that its fixed ports touch nothing)
// against a fake node that serves a document with both capture
// listeners, and reports its resident memory once the document is
// applied and it has idled for two seconds: RSS-kB in all, anon-kB of it
// private (the rest is the binary's pages, shared by every sidecar of a
// node). Goal: RSS ≤ 10 MB.
func BenchmarkIdleRSS(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root: runs the proxy in a network namespace of its own")
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		b.Skip("needs unshare")
	}
	dir := b.TempDir()
	bin := filepath.Join(dir, "skiff-proxy")
	build := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}

	socket := filepath.Join(dir, meshconfig.SocketName)
	applied := make(chan meshconfig.Status, 1)
	ln, err := net.Listen("unix", socket)
	if err != nil {
		b.Fatal(err)
	}
	doc, _ := json.Marshal(idleDocument())
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+meshconfig.ConfigPath, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("version") == "idle" {
			select {
			case <-r.Context().Done():
			case <-time.After(30 * time.Second):
				w.WriteHeader(http.StatusNotModified)
			}
			return
		}
		_, _ = w.Write(doc)
	})
	mux.HandleFunc("POST "+meshconfig.StatusPath, func(w http.ResponseWriter, r *http.Request) {
		var st meshconfig.Status
		_ = json.NewDecoder(r.Body).Decode(&st)
		select {
		case applied <- st:
		default:
		}
	})
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	b.Cleanup(func() { srv.Close() })

	// unshare and sh exec: the proxy keeps the command's pid.
	cmd := exec.Command("unshare", "--net", "--", "sh", "-c", `ip link set lo up && exec "$0" --socket "$1" --log-level warn`, bin, socket)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	})
	select {
	case st := <-applied:
		if st.Error != "" {
			b.Fatalf("document rejected: %s", st.Error)
		}
	case <-time.After(30 * time.Second):
		b.Fatal("the proxy did not apply the document")
	}
	time.Sleep(2 * time.Second)
	mem := procStatus(b, cmd.Process.Pid)
	for b.Loop() {
	}
	b.ReportMetric(float64(mem["VmRSS"]), "RSS-kB")
	b.ReportMetric(float64(mem["RssAnon"]), "anon-kB")
}

func procStatus(b *testing.B, pid int) map[string]int {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	out := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if f := strings.Fields(v); ok && len(f) == 2 && f[1] == "kB" {
			out[k], _ = strconv.Atoi(f[0])
		}
	}
	return out
}

// idleDocument is a small sidecar's configuration: both capture
// listeners, one outbound HTTP service, one inbound HTTP port.
func idleDocument() *meshconfig.Sidecar {
	catchAll := func(name, cluster string) proxy.RouteTable {
		return proxy.RouteTable{Name: name, VirtualHosts: []proxy.VirtualHost{{Name: name, Domains: []string{"*"},
			Routes: []proxy.Route{{Clusters: []proxy.WeightedCluster{{Cluster: cluster}}}}}}}
	}
	return &meshconfig.Sidecar{
		Version:  "idle",
		Workload: meshconfig.Workload{Pod: "p", Namespace: "default", Name: "w", Principal: "cluster.local/ns/default/sa/default"},
		Proxy: proxy.Config{
			Listeners: []proxy.Listener{
				{Name: "virtualOutbound", Address: "0.0.0.0:" + strconv.Itoa(meshconfig.OutboundPort), Capture: &proxy.Capture{
					Direction: proxy.Outbound, Chains: []proxy.FilterChain{{Name: "outbound|80", Match: proxy.ChainMatch{Port: 80}, RouteTable: "80"}}}},
				{Name: "virtualInbound", Address: "0.0.0.0:" + strconv.Itoa(meshconfig.InboundPort), Capture: &proxy.Capture{
					Direction: proxy.Inbound, Chains: []proxy.FilterChain{{Name: "inbound|8080", Match: proxy.ChainMatch{Port: 8080}, RouteTable: "in"}}}},
			},
			RouteTables: []proxy.RouteTable{catchAll("80", "svc"), catchAll("in", "in")},
			Clusters: []proxy.Cluster{{Name: "svc", Endpoints: []proxy.Endpoint{{Address: "10.244.0.9:8080"}}},
				{Name: "in", Endpoints: []proxy.Endpoint{{Address: "127.0.0.1:8080"}}}},
		},
	}
}
