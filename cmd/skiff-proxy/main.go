// Command skiff-proxy is the mesh's sidecar proxy: the process of every
// injected pod's istio-proxy container (image skiff.dev/proxy:builtin).
// It runs package sidecar: configuration from the node over the unix
// socket the node agent mounts at /var/run/skiff-mesh, capture listeners
// on 15001/15006, readiness on 15021, metrics on 15020 and the admin's
// config dump on 127.0.0.1:15000.
//
//	skiff-proxy [--socket PATH] [--log-level debug|info|warn|error] [--access-log] [--concurrency N]
//
// The flags can be given in the environment instead: SKIFF_MESH_SOCKET,
// SKIFF_PROXY_LOG_LEVEL, SKIFF_PROXY_ACCESS_LOG=1 and
// SKIFF_PROXY_CONCURRENCY (default 1).
//
// It is a binary of its own, apart from skiff, because one runs in every
// meshed pod: it links no Kubernetes or Istio API packages (deps_test.go
// checks), so that it stays small at rest.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"skiff.dev/skiff/internal/mesh/meshconfig"
	"skiff.dev/skiff/internal/mesh/proxy"
	"skiff.dev/skiff/internal/mesh/sidecar"
	"skiff.dev/skiff/internal/mesh/telemetry"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "skiff-proxy:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("skiff-proxy", flag.ContinueOnError)
	socket := fs.String("socket", envOr("SKIFF_MESH_SOCKET", filepath.Join(meshconfig.MountPath, meshconfig.SocketName)),
		"the node's mesh socket (env SKIFF_MESH_SOCKET)")
	level := fs.String("log-level", envOr("SKIFF_PROXY_LOG_LEVEL", "info"),
		"debug, info, warn or error (env SKIFF_PROXY_LOG_LEVEL)")
	concurrency := fs.Int("concurrency", envInt("SKIFF_PROXY_CONCURRENCY", 1),
		"CPUs the proxy's Go scheduler uses, like Istio's proxy concurrency (env SKIFF_PROXY_CONCURRENCY; GOMAXPROCS wins when set)")
	accessLogOn := fs.Bool("access-log", os.Getenv("SKIFF_PROXY_ACCESS_LOG") == "1",
		"write Istio's access log line per request to stdout (env SKIFF_PROXY_ACCESS_LOG=1)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if os.Getenv("GOMAXPROCS") == "" && *concurrency > 0 {
		// One P spins less between requests: at 1,000 rps it costs
		// ≈ 20 % less CPU than two, with no latency lost (bench/mesh).
		runtime.GOMAXPROCS(*concurrency)
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Istio's standard metrics (istio_requests_total, ...) and access
	// log, labelled with the workload each document names.
	metrics, err := telemetry.New(reg, meshconfig.Workload{})
	if err != nil {
		return err
	}
	var accessLog proxy.AccessLogger // nil: metrics only
	if *accessLogOn {
		accessLog = telemetry.NewIstioAccessLog(os.Stdout)
	}
	// The app containers' probes, rewritten at injection to the stats
	// port; a bad value is the injector's bug: say so, probe nothing.
	appProbers, err := sidecar.ParseAppProbers(os.Getenv(meshconfig.AppProbersEnv))
	if err != nil {
		log.Error("app probes disabled", "err", err)
	}
	sc := sidecar.New(sidecar.Options{
		Logger:     log,
		Socket:     *socket,
		Metrics:    promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
		AppProbers: appProbers,
		Middleware: func(w meshconfig.Workload) []proxy.Middleware {
			metrics.SetLocal(w)
			return []proxy.Middleware{metrics.Middleware()}
		},
		AccessLog: func(meshconfig.Workload) proxy.AccessLogger { return metrics.AccessLog(accessLog) },
		TCP: func(c *proxy.TCPConn) proxy.TCPStream {
			return metrics.TCP(telemetry.TCPConn{Direction: c.Direction, ClusterMetadata: c.ClusterMetadata, PeerPrincipal: c.PeerPrincipal})
		},
	})

	// The node agent stops the sidecar after the app containers (native
	// sidecar): on SIGTERM, drain and exit.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	return sc.Run(ctx)
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return n
	}
	return def
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
