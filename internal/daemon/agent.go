package daemon

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"skiff.dev/skiff/internal/agent"
	"skiff.dev/skiff/internal/agent/podruntime"
	"skiff.dev/skiff/internal/agent/server"
	"skiff.dev/skiff/internal/agent/stats"
	"skiff.dev/skiff/internal/image/content"
	"skiff.dev/skiff/internal/image/images"
	"skiff.dev/skiff/internal/image/snapshot"
	"skiff.dev/skiff/internal/network/bridge"
	"skiff.dev/skiff/internal/runtime"
)

// AgentOptions configure a node (`skiff agent`, or the node `skiff
// server` runs in-process).
type AgentOptions struct {
	// Config reaches the API server: the server's loopback config
	// in-process, a kubeconfig's for `skiff agent`.
	Config *rest.Config
	// NodeName names the Node (default: the host name, lower-cased).
	NodeName string
	// DataDir is Skiff's data directory. The node keeps its state under
	// DataDir/node and shares the image store (DataDir/images,
	// DataDir/layers) with the container engine.
	DataDir string
	// RunDir holds runtime state, namespace files and mount points
	// (default /run/skiff); the node uses RunDir/node.
	RunDir string
	// LogDir is the root of the pods' log files (default /var/log/pods).
	LogDir string
	// ShimPath is the skiff-shim binary (default: beside this
	// executable, then $PATH).
	ShimPath string
	// ProxyPath is the skiff-proxy binary the node makes its sidecar
	// image from (default: beside this executable, then $PATH).
	ProxyPath string
	// PodCIDR is the node's pod subnet (default 10.244.0.0/24).
	PodCIDR string
	// NodeIP is the node's address (default: detected).
	NodeIP string
	// ServerPort is the agent server's port published in the Node
	// (default 10250).
	ServerPort int32
	// ServerAddr is where the agent server listens (default
	// ":<ServerPort>"); port 0 picks a free port, which the Node then
	// publishes. The server needs the cluster CA in Config (CAData or
	// CAFile) to authenticate the API server; without it none runs.
	ServerAddr string
	// ClusterDNS are the pods' nameservers (dnsPolicy ClusterFirst);
	// empty gives pods the node's resolv.conf.
	ClusterDNS []string
	// Net configures the node's service networking (service proxy, DNS,
	// NetworkPolicy, Ingress). With it enabled and ClusterDNS empty, pods
	// use the cluster DNS Service (the tenth address of the service CIDR).
	Net NodeNetOptions
	// Network is a started bridge Manager to put the pods network on,
	// when the process already runs one in this network namespace (one
	// Manager per namespace owns its nftables table). Nil starts one of
	// the node's own, with table "skiff-node" and default bridge
	// "skiff-node0", so that it stays clear of a container engine's.
	Network *bridge.Manager
	// NodeCredentials, if set, gives the node a client config of its own
	// identity (system:node:NAME) for what the server checks per node
	// (mesh workload certificates); nil uses Config.
	NodeCredentials func(nodeName string) (*rest.Config, error)
	Logger          *slog.Logger
	// Ready, if not nil, is closed once the node is registered and runs
	// pods.
	Ready chan<- struct{}
}

// RunAgent runs a node until ctx ends: the pod runtime (images, pod
// sandboxes on the pods bridge network, containers under skiff-shim) and
// the node agent on it. Containers keep running after it returns; the
// next RunAgent on the same directories adopts them.
func RunAgent(ctx context.Context, o AgentOptions) error {
	if o.Config == nil || o.DataDir == "" {
		return errors.New("agent: an API config and a data dir are required")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.RunDir == "" {
		o.RunDir = "/run/skiff"
	}
	if o.NodeName == "" {
		host, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("agent: node name: %w", err)
		}
		o.NodeName = strings.ToLower(host)
	}
	routeKlog()
	shim, err := findShim(o.ShimPath)
	if err != nil {
		return err
	}
	client, err := kubernetes.NewForConfig(o.Config)
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	nodeData, nodeRun := filepath.Join(o.DataDir, "node"), filepath.Join(o.RunDir, "node")

	store := content.New(filepath.Join(o.DataDir, "images"))
	if err := store.Init(); err != nil {
		return fmt.Errorf("image store: %w", err)
	}
	nets := o.Network
	if nets == nil {
		nets = bridge.New(bridge.Options{
			StateDir:      filepath.Join(nodeData, "networks"),
			Table:         "skiff-node",
			DefaultBridge: "skiff-node0",
			DefaultSubnet: "172.31.255.0/24",
			Logger:        o.Logger,
		})
		if err := nets.Start(ctx); err != nil {
			return fmt.Errorf("pod network: %w", err)
		}
		defer nets.Close()
	}
	imgs := images.New(store)
	ensureProxyImage(ctx, imgs, o.ProxyPath, o.Logger)
	pods := podruntime.New(podruntime.Options{
		DataDir:   filepath.Join(nodeData, "podruntime"),
		RunDir:    filepath.Join(nodeRun, "podruntime"),
		Images:    imgs,
		Snapshots: snapshot.New(filepath.Join(o.DataDir, "layers"), store),
		Runtime:   runtime.New(runtime.Options{StateDir: filepath.Join(nodeRun, "runtime"), ShimPath: shim, Logger: o.Logger}),
		Network:   nets,
		PodCIDR:   o.PodCIDR,
		LogDir:    o.LogDir,
		Logger:    o.Logger,
	})
	start := time.Now()
	if err := pods.Start(ctx); err != nil {
		return fmt.Errorf("pod runtime: %w", err)
	}
	podCIDR := o.PodCIDR
	if podCIDR == "" {
		podCIDR = podruntime.DefaultPodCIDR
	}
	srvLn, port, cas, err := listenAgentServer(o)
	if err != nil {
		return err
	}
	if srvLn != nil {
		defer srvLn.Close()
	}
	clusterDNS := o.ClusterDNS
	if len(clusterDNS) == 0 && !o.Net.Disable {
		if ip, err := clusterDNSIP(o.Net.ServiceCIDR); err != nil {
			o.Logger.Warn("pods use the node's resolvers", "component", "agent", "err", err)
		} else {
			clusterDNS = []string{ip.String()}
		}
	}
	netDone, err := runNodeNet(ctx, client, o.NodeName, podCIDR, o.Net, o.Logger)
	if err != nil {
		return fmt.Errorf("node networking: %w", err)
	}
	defer func() { <-netDone }()
	nodeCfg := o.Config
	if o.NodeCredentials != nil {
		if nodeCfg, err = o.NodeCredentials(o.NodeName); err != nil {
			return fmt.Errorf("node credentials: %w", err)
		}
	}
	meshIdentity, stopMeshIdentity, err := runMeshIdentity(ctx, nodeCfg, o.NodeName, o.Logger)
	if err != nil {
		return fmt.Errorf("mesh identity: %w", err)
	}
	defer stopMeshIdentity()
	meshCtx, stopMesh := context.WithCancel(ctx)
	meshDone, err := runMesh(meshCtx, o.Config, client, o.NodeName, nodeData, meshIdentity, o.Logger)
	if err != nil {
		stopMesh()
		return fmt.Errorf("mesh server: %w", err)
	}
	defer func() { stopMesh(); <-meshDone }()
	a := agent.New(agent.Options{
		NodeName:   o.NodeName,
		Client:     client,
		Runtime:    pods,
		DataDir:    filepath.Join(nodeData, "agent"),
		NodeIP:     o.NodeIP,
		PodCIDR:    podCIDR,
		ServerPort: port,
		ClusterDNS: clusterDNS,
		ResolvConf: o.Net.ResolvConf,
		Mesh:       newMeshNode(nodeData, o.Logger),
	}, o.Logger)
	stopServer := func() {}
	if srvLn != nil {
		srv := server.New(a, pods, o.Logger, server.Options{
			Listener: srvLn, ClientCAs: cas, Hostnames: []string{o.NodeName, o.NodeIP},
			Extra: stats.Handler(stats.New(pods, stats.Options{NodeName: o.NodeName, Logger: o.Logger})),
		})
		srvCtx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := srv.Run(srvCtx); err != nil {
				o.Logger.Error("agent server stopped", "component", "agent-server", "err", err)
			}
		}()
		stopServer = func() { cancel(); <-done }
	}
	defer stopServer()
	if o.Ready != nil {
		go func() {
			select {
			case <-a.Ready():
				o.Logger.Info("node ready", "component", "daemon", "node", o.NodeName, "startup", time.Since(start).Round(time.Millisecond))
				close(o.Ready)
			case <-ctx.Done():
			}
		}()
	}
	return a.Run(ctx)
}

// listenAgentServer opens the agent server's port and returns the port
// the Node publishes and the cluster CA clients must be signed by.
// Without a cluster CA to check clients against there is no server (nil
// listener) and the configured port is published all the same.
func listenAgentServer(o AgentOptions) (net.Listener, int32, *x509.CertPool, error) {
	port := o.ServerPort
	if port == 0 {
		port = 10250
	}
	cas, err := clusterCAs(o.Config)
	if err != nil {
		return nil, 0, nil, err
	}
	if cas == nil {
		o.Logger.Warn("no cluster CA in the API config: not serving logs, exec or port-forward", "component", "agent-server")
		return nil, port, nil, nil
	}
	addr := o.ServerAddr
	if addr == "" {
		addr = net.JoinHostPort("", strconv.Itoa(int(port)))
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("agent server: %w", err)
	}
	return ln, int32(ln.Addr().(*net.TCPAddr).Port), cas, nil
}
