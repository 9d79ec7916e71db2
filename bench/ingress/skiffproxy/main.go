// Command skiffproxy runs Skiff's L7 proxy (internal/mesh/proxy) with the
// configuration the Ingress controller makes for one Ingress path
// (Prefix /ui to one Service endpoint), for the ingress benchmark.
package main

import (
	"context"
	"flag"
	"io"
	"log"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"

	"skiff.dev/skiff/internal/mesh/proxy"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:18081", "address")
	upstream := flag.String("upstream", "127.0.0.1:18080", "backend address")
	accessLog := flag.Bool("access-log", false, "write an access log to /dev/null")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile to this file")
	flag.Parse()
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
	if *accessLog {
		opts.AccessLog = proxy.NewTextAccessLog(io.Discard)
	}
	p := proxy.New(opts)
	err := p.Update(&proxy.Config{
		Version:   "bench",
		Listeners: []proxy.Listener{{Name: "http", Address: *listen, RouteTable: "ingress"}},
		RouteTables: []proxy.RouteTable{{Name: "ingress", SingleLabelWildcards: true, VirtualHosts: []proxy.VirtualHost{{
			Name: "*", Domains: []string{"*"},
			Routes: []proxy.Route{{Name: "default/shop",
				Match:    proxy.RouteMatch{Path: proxy.PathMatch{Kind: proxy.PathSegmentPrefix, Value: "/ui"}},
				Clusters: []proxy.WeightedCluster{{Cluster: "default/ui:80"}}}},
		}}}},
		Clusters: []proxy.Cluster{{Name: "default/ui:80", Endpoints: []proxy.Endpoint{{Address: *upstream}}}},
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := p.Run(ctx); err != nil {
		log.Print(err)
	}
}
