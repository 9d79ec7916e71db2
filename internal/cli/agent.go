package cli

import (
	"errors"

	"github.com/spf13/pflag"
	"log/slog"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"

	"skiff.dev/skiff/internal/daemon"
)

func newAgentCmd() *cobra.Command {
	var o daemon.AgentOptions
	var server, kubeconfig string
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Run a node against a Skiff (or any Kubernetes) API server",
		Long: `Run a node alone (the kubelet's job): register a Node, renew its Lease and
run the pods the scheduler binds to it, in pod sandboxes on the node's pod
network. It reaches the API server with --kubeconfig, whose server
--server overrides. Containers keep running when the agent stops and are
adopted, not restarted, when it starts again.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if kubeconfig == "" && server == "" {
				return errors.New("--kubeconfig (or --server) is required")
			}
			rules := &clientcmd.ClientConfigLoadingRules{ExplicitPath: kubeconfig}
			overrides := &clientcmd.ConfigOverrides{}
			if server != "" {
				overrides.ClusterInfo.Server = server
			}
			cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides).ClientConfig()
			if err != nil {
				return err
			}
			cfg.QPS, cfg.Burst = 50, 100
			cfg.UserAgent = "skiff-agent"
			o.Config = cfg
			o.Logger = slog.Default()
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return daemon.RunAgent(ctx, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&server, "server", "", "URL of the API server (overrides the kubeconfig's)")
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig with the node's credentials")
	f.StringVar(&o.NodeName, "node-name", "", "name of the Node (default: the host name)")
	f.StringVar(&o.DataDir, "data-dir", envOr("SKIFF_AGENT_DATA_DIR", "/var/lib/skiff-agent"), "the node's data directory")
	f.StringVar(&o.RunDir, "run-dir", "/run/skiff-agent", "runtime state, namespace files and mount points")
	f.StringVar(&o.LogDir, "log-dir", "/var/log/pods", "root of the pods' log files")
	f.StringVar(&o.ShimPath, "shim", "", "the skiff-shim binary (default: beside skiff, then $PATH)")
	f.StringVar(&o.PodCIDR, "pod-cidr", "10.244.0.0/24", "the node's pod subnet")
	f.StringVar(&o.NodeIP, "node-ip", "", "the node's address (default: that of the default route's interface)")
	f.Int32Var(&o.ServerPort, "port", 10250, "the agent server's port, published in the Node")
	f.StringSliceVar(&o.ClusterDNS, "cluster-dns", nil, "nameservers of pods with dnsPolicy ClusterFirst (default: the cluster DNS Service)")
	f.StringVar(&o.Net.ServiceCIDR, "service-cidr", "10.96.0.0/12", "the cluster's service CIDR (as the server's --service-cidr)")
	f.StringSliceVar(&o.Net.LBPool, "lb-pool", nil, "LoadBalancer addresses this node may announce (as the server's --lb-pool)")
	addNodeNetFlags(f, &o.Net)
	return cmd
}

// addNodeNetFlags are the node networking flags `skiff server` and `skiff
// agent` share.
func addNodeNetFlags(f *pflag.FlagSet, o *daemon.NodeNetOptions) {
	f.BoolVar(&o.Disable, "disable-network-services", false, "run no service proxy, cluster DNS, NetworkPolicy or Ingress on this node")
	f.StringVar(&o.IngressHTTP, "ingress-http", ":80", "listen address of the Ingress edge proxy (\"-\": none)")
	f.StringVar(&o.IngressHTTPS, "ingress-https", ":443", "TLS listen address of the Ingress edge proxy")
	f.StringVar(&o.ResolvConf, "resolv-conf", "/etc/resolv.conf", "the node's resolver configuration: cluster DNS forwards to its nameservers, pods with dnsPolicy Default get it")
	f.StringVar(&o.Uplink, "uplink", "", "interface LoadBalancer addresses are announced on (default: the default route's)")
}
