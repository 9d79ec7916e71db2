// Command pairproxy runs one of Skiff's proxies (internal/mesh/proxy) in
// the shape a sidecar pair has, for the mesh benchmark (bench/mesh): the
// client's outbound proxy (a listener whose one route goes to a mesh
// cluster: the server's inbound proxy) or the server's inbound proxy (a
// listener whose one route goes to the app on loopback), or a single
// proxy between client and server (the reference path nginx and haproxy
// take). With -document it serves a sidecar's whole document instead
// (capture listeners, mesh mTLS), as skiff-proxy would. Each runs as a process of its own so that the harness can read
// its CPU time and memory from /proc.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"

	"skiff.dev/skiff/internal/mesh/meshconfig"
	"skiff.dev/skiff/internal/mesh/proxy"
	"skiff.dev/skiff/internal/mesh/telemetry"
)

func main() {
	role := flag.String("role", "outbound", "outbound, inbound or single")
	listen := flag.String("listen", "127.0.0.1:15001", "address")
	upstream := flag.String("upstream", "127.0.0.1:15006", "the next hop: the peer's inbound proxy (outbound) or the app (inbound, single)")
	withTelemetry := flag.Bool("telemetry", false, "Istio's standard metrics and metadata exchange, as sidecars run")
	document := flag.String("document", "", "serve this sidecar document (meshconfig.Sidecar JSON: capture listeners, mTLS) instead of -role's listener")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile to this file")
	flag.Parse()
	cfg, w := config(*role, *listen, *upstream), workload(*role)
	if *document != "" {
		b, err := os.ReadFile(*document)
		if err != nil {
			log.Fatal(err)
		}
		var doc meshconfig.Sidecar
		if err := json.Unmarshal(b, &doc); err != nil {
			log.Fatal(err)
		}
		cfg, w = &doc.Proxy, doc.Workload
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer pprof.StopCPUProfile()
	}
	opts := proxy.Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	if *withTelemetry {
		m, err := telemetry.New(prometheus.NewRegistry(), w)
		if err != nil {
			log.Fatal(err)
		}
		opts.Middleware = []proxy.Middleware{m.Middleware()}
		opts.AccessLog = m.AccessLog(nil)
	}
	p := proxy.New(opts)
	if err := p.Update(cfg); err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := p.Run(ctx); err != nil {
		log.Print(err)
	}
}

// The benchmark's two workloads: client (outbound side) calls server.
const (
	service = "server.bench.svc.cluster.local"
	port    = "8080"
)

func workload(role string) meshconfig.Workload {
	name := "client"
	if role == "inbound" {
		name = "server"
	}
	return meshconfig.Workload{
		Pod: name + "-0", Namespace: "bench", Name: name, ServiceAccount: name,
		CanonicalService: name, CanonicalRevision: "latest", App: name,
		Principal: "cluster.local/ns/bench/sa/" + name, TrustDomain: "cluster.local",
	}
}

func config(role, listen, upstream string) *proxy.Config {
	cluster := proxy.Cluster{
		Name:      "outbound|" + port + "||" + service,
		Endpoints: []proxy.Endpoint{{Address: upstream, Mesh: true, Labels: map[string]string{"app": "server"}}},
		Metadata: map[string]string{
			"destination_service": service, "destination_service_name": "server",
			"destination_service_namespace": "bench",
		},
	}
	if role != "outbound" {
		cluster.Name = "inbound|" + port + "||"
		cluster.Endpoints[0].Mesh = false
	}
	return &proxy.Config{
		Version:   "bench",
		Listeners: []proxy.Listener{{Name: role, Address: listen, RouteTable: role}},
		RouteTables: []proxy.RouteTable{{Name: role, VirtualHosts: []proxy.VirtualHost{{
			Name: service + ":" + port, Domains: []string{"*"},
			Routes: []proxy.Route{{Name: "default", Clusters: []proxy.WeightedCluster{{Cluster: cluster.Name}}}},
		}}}},
		Clusters: []proxy.Cluster{cluster},
	}
}
