package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"log/slog"

	"github.com/spf13/cobra"

	"skiff.dev/skiff/internal/daemon"
	"skiff.dev/skiff/internal/etcdserver"
)

func newServerCmd() *cobra.Command {
	var opts daemon.ServerOptions
	var endpoints string
	var disableAgent bool
	var agent daemon.AgentOptions
	var notReadySeconds, unreachableSeconds int64
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the control plane (API server, store, controllers, scheduler) and a node",
		Long: `Run the control plane and, unless --disable-agent, a node in the same
process (an all-in-one cluster; the node needs root). By default state lives
in an embedded etcd under --data-dir; --etcd-endpoints uses an external etcd
cluster instead. On first start a CA, a serving certificate and an admin
kubeconfig are created in the data dir.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if endpoints != "" {
				opts.EtcdEndpoints = strings.Split(endpoints, ",")
			}
			opts.Logger = slog.Default()
			opts.DefaultNotReadyTolerationSeconds = &notReadySeconds
			opts.DefaultUnreachableTolerationSeconds = &unreachableSeconds
			if !disableAgent {
				if os.Geteuid() != 0 {
					return fmt.Errorf("the node agent needs root (namespaces, cgroups, mounts): run as root or pass --disable-agent")
				}
				opts.Agent = &agent
			}
			srv, err := daemon.NewServer(opts)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			go exitIfStuck(ctx, shutdownLimit)
			return srv.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.DataDir, "data-dir", DefaultDataDir, "directory for the server's state")
	f.StringVar(&opts.Listen, "listen", ":6443", "address the API server listens on (HTTPS)")
	f.StringVar(&opts.RegistryListen, "registry-listen", "127.0.0.1:5000", "loopback address of the embedded registry's plain-HTTP endpoint (empty: only /v2/ on the API port)")
	f.StringVar(&endpoints, "etcd-endpoints", "", "comma-separated URLs of an external etcd cluster (default: embedded etcd)")
	f.StringVar(&opts.EtcdTLS.CAFile, "etcd-cafile", "", "CA bundle of the external etcd's serving certificates")
	f.StringVar(&opts.EtcdTLS.CertFile, "etcd-certfile", "", "client certificate for the external etcd")
	f.StringVar(&opts.EtcdTLS.KeyFile, "etcd-keyfile", "", "client key for the external etcd")
	f.StringVar(&opts.ServiceCIDR, "service-cidr", "10.96.0.0/12", "range Services' cluster IPs are allocated from (its first address goes to default/kubernetes)")
	f.StringVar(&opts.ServiceNodePortRange, "service-node-port-range", "30000-32767", "range Services' node ports are allocated from")
	f.DurationVar(&opts.MeshCertTTL, "mesh-workload-cert-ttl", 24*time.Hour, "lifetime of mesh workload certificates (SPIFFE identities of sidecars)")
	f.StringVar(&opts.AdvertiseAddress, "advertise-address", "", "address the default/kubernetes Service's endpoints name (default: the --listen address if specific, else the host's first global address)")
	f.Int64Var(&notReadySeconds, "default-not-ready-toleration-seconds", 300, "tolerationSeconds of the node.kubernetes.io/not-ready:NoExecute toleration every pod gets")
	f.Int64Var(&unreachableSeconds, "default-unreachable-toleration-seconds", 300, "tolerationSeconds of the node.kubernetes.io/unreachable:NoExecute toleration every pod gets")
	f.BoolVar(&disableAgent, "disable-agent", false, "run the control plane only (no node in this process)")
	f.StringVar(&agent.NodeName, "node-name", "", "this node's name (default: the host name)")
	f.StringVar(&agent.RunDir, "run-dir", "/run/skiff", "runtime state of the node (namespaces, shims)")
	f.StringVar(&agent.ShimPath, "shim", "", "the skiff-shim binary (default: beside skiff, then $PATH)")
	f.StringVar(&agent.PodCIDR, "pod-cidr", "", "the node's pod subnet (default 10.244.0.0/24)")
	f.StringSliceVar(&opts.LBPool, "lb-pool", nil, "addresses LoadBalancer Services get: CIDRs, ranges a-b or addresses (default: the nodes' own addresses)")
	addNodeNetFlags(f, &agent.Net)
	return cmd
}

func newEtcdCmd() *cobra.Command {
	var cfg etcdserver.Config
	var clientURLs string
	cmd := &cobra.Command{
		Use:   "etcd",
		Short: "Run a standalone etcd member (for servers started with --etcd-endpoints)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.ClientURLs = strings.Split(clientURLs, ",")
			cfg.Logger = slog.Default()
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			m, err := etcdserver.StartEmbedded(ctx, cfg)
			if err != nil {
				return err
			}
			defer m.Close()
			slog.Info("etcd ready", "component", "etcd", "clients", clientURLs)
			select {
			case <-ctx.Done():
				return nil
			case err := <-m.Err():
				return err
			}
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Dir, "data-dir", DefaultDataDir+"/etcd-standalone", "directory for the member's data")
	f.StringVar(&clientURLs, "listen-client-urls", "http://127.0.0.1:2379", "comma-separated URLs to serve clients on")
	f.StringVar(&cfg.Name, "name", "skiff", "member name")
	return cmd
}

// shutdownLimit bounds a graceful shutdown; past it the process dumps its
// goroutines (to find what hung) and exits.
const shutdownLimit = 45 * time.Second

func exitIfStuck(ctx context.Context, limit time.Duration) {
	<-ctx.Done()
	time.Sleep(limit)
	slog.Error("graceful shutdown did not finish; exiting", "component", "daemon", "limit", limit)
	pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
	os.Exit(1)
}
