// Package daemon is the composition root: it builds Skiff's components for
// a role (server, agent) and runs them in order, each stage waiting for the
// one it stands on. It is the only package that imports (almost) all others.
package daemon

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/client-go/rest"

	"skiff.dev/skiff/internal/etcdserver"
	"skiff.dev/skiff/internal/metricsapi"
	"skiff.dev/skiff/internal/pki"
	"skiff.dev/skiff/internal/store"
)

// ServerOptions configure `skiff server`.
type ServerOptions struct {
	DataDir string
	// Listen is the API server's address (host:port).
	Listen string
	// EtcdEndpoints selects an external etcd cluster; empty runs an
	// embedded member under DataDir/etcd.
	EtcdEndpoints []string
	EtcdTLS       etcdserver.ClientTLS
	// RegistryListen is the loopback address of the embedded registry's
	// plain-HTTP endpoint; empty disables it (/v2/ on the API port stays).
	RegistryListen string
	// DisableControllers runs the API without control loops (tests of a
	// controller run their own).
	DisableControllers bool
	// Agent, when set, runs a node in this process too (the all-in-one
	// cluster): the node agent with these options (Config and DataDir are
	// filled in by the server).
	Agent *AgentOptions
	// CompactInterval is how often etcd history is compacted.
	CompactInterval time.Duration
	// ServiceCIDR is the range Services' cluster IPs come from (empty:
	// 10.96.0.0/12); its first address goes to default/kubernetes.
	ServiceCIDR string
	// LBPool are the addresses LoadBalancer Services get (CIDRs, ranges
	// "a-b" or single addresses); empty: the Ready nodes' addresses.
	LBPool []string
	// ServiceNodePortRange is the node port range, "FIRST-LAST" (empty:
	// 30000-32767).
	ServiceNodePortRange string
	// AdvertiseAddress is the address the default/kubernetes endpoints
	// name (empty: the listen address if specific, else the host's first
	// global address).
	AdvertiseAddress string
	// DefaultNotReadyTolerationSeconds and
	// DefaultUnreachableTolerationSeconds are the tolerationSeconds of the
	// tolerations every pod gets for those node taints (nil: 300).
	DefaultNotReadyTolerationSeconds    *int64
	DefaultUnreachableTolerationSeconds *int64
	// MetricsResolution is how often the metrics API scrapes the nodes
	// (default 15 s); MetricsNodes replaces the node client it scrapes
	// them with (tests).
	MetricsResolution time.Duration
	MetricsNodes      metricsapi.NodeGetter
	// MeshCertTTL is the lifetime of mesh workload certificates (default
	// 24h).
	MeshCertTTL time.Duration
	Logger      *slog.Logger
}

// Paths of the files a server keeps in its data dir.
func AdminKubeconfigPath(dataDir string) string { return filepath.Join(dataDir, "admin.kubeconfig") }
func pkiDir(dataDir string) string              { return filepath.Join(dataDir, "pki") }

// Server is a running control plane.
type Server struct {
	opts  ServerOptions
	log   *slog.Logger
	ready chan struct{}
	addr  string
}

// NewServer checks options; it does no I/O.
func NewServer(opts ServerOptions) (*Server, error) {
	if opts.DataDir == "" {
		return nil, errors.New("a data dir is required")
	}
	if opts.Listen == "" {
		opts.Listen = ":6443"
	}
	if opts.CompactInterval == 0 {
		opts.CompactInterval = 5 * time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Server{opts: opts, log: opts.Logger, ready: make(chan struct{})}, nil
}

// Ready is closed once the API answers and the cluster's bootstrap
// objects exist.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addr is the address the API server listens on, once Ready.
func (s *Server) Addr() string { return s.addr }

// Run starts the store, the API server and the controllers, and blocks
// until ctx ends; then it shuts down in reverse order.
func (s *Server) Run(ctx context.Context) error {
	start := time.Now()
	routeKlog()
	dataDir, err := filepath.Abs(s.opts.DataDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	ln, err := net.Listen("tcp", s.opts.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.opts.Listen, err)
	}
	defer ln.Close()
	s.addr = ln.Addr().String()

	certs, err := loadCerts(dataDir, ln.Addr())
	if err != nil {
		return err
	}
	s.log.Debug("certificates loaded", "component", "daemon", "elapsed", time.Since(start))

	cli, closeStore, err := s.openEtcd(ctx, dataDir)
	if err != nil {
		return err
	}
	defer closeStore()
	s.log.Debug("store ready", "component", "daemon", "elapsed", time.Since(start))
	st := store.NewEtcd(cli)
	go st.RunCompactor(ctx, s.opts.CompactInterval)

	_, reg, err := newRegistry(dataDir, s.log)
	if err != nil {
		return err
	}
	nodes, err := newNodeClient(certs, certs.loopbackConfig(s.addr))
	if err != nil {
		return err
	}
	plugins, err := newAdmissionPlugins(certs.loopbackConfig(s.addr), s.log)
	if err != nil {
		return err
	}
	if err := plugins.addPodPlugins(certs.loopbackConfig(s.addr), s.opts, s.log); err != nil {
		return err
	}
	if err := plugins.addIstioPlugins(certs.loopbackConfig(s.addr), s.log); err != nil {
		return err
	}
	cidr, nodePorts, err := s.opts.serviceRanges()
	if err != nil {
		return err
	}
	metrics, err := newMetricsAPI(certs.loopbackConfig(s.addr), nodes, s.opts, s.log)
	if err != nil {
		return err
	}
	api, err := newAPIServer(st, reg, nodes, plugins.chain(), s.log, withServiceRanges(cidr, nodePorts), metrics.extra)
	if err != nil {
		return err
	}
	registryDone := closedChan()
	if s.opts.RegistryListen != "" {
		if err := loopbackOnly(s.opts.RegistryListen); err != nil {
			return err
		}
		rln, err := net.Listen("tcp", s.opts.RegistryListen)
		if err != nil {
			return fmt.Errorf("registry: %w", err)
		}
		s.log.Info("registry listening", "component", "registry", "addr", rln.Addr().String())
		done := make(chan struct{})
		registryDone = done
		go func() {
			defer close(done)
			if err := serveRegistry(ctx, rln, reg, s.log); err != nil {
				s.log.Error("registry stopped", "component", "registry", "err", err)
			}
		}()
	}
	// Watches and other long requests end when the server stops.
	baseCtx, cancelRequests := context.WithCancel(context.Background())
	defer cancelRequests()
	srv := &http.Server{
		Handler:           api.Handler(),
		TLSConfig:         certs.serverTLS(),
		ReadHeaderTimeout: 30 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return baseCtx },
		ErrorLog:          slog.NewLogLogger(s.log.With("component", "http").Handler(), slog.LevelDebug),
	}
	cachesDone := make(chan struct{})
	go func() { api.Run(ctx); close(cachesDone) }()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(tls.NewListener(ln, srv.TLSConfig)) }()
	defer plugins.start(ctx)()
	defer metrics.start(ctx)()

	loopback := certs.loopbackConfig(s.addr)
	s.log.Debug("api serving", "component", "daemon", "elapsed", time.Since(start))
	if err := bootstrap(ctx, loopback); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	if err := bootstrapKubernetesService(ctx, loopback, cidr, s.addr, s.opts.AdvertiseAddress); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	if err := bootstrapNetworking(ctx, loopback, cidr, s.log); err != nil {
		return fmt.Errorf("bootstrap: %w", err)
	}
	api.SetReady(true)
	kubeconfig := AdminKubeconfigPath(dataDir)
	s.log.Info("skiff server ready", "component", "daemon", "listen", s.addr, "kubeconfig", kubeconfig,
		"startup", time.Since(start).Round(time.Millisecond))
	close(s.ready)

	meshCA, err := loadMeshCA(dataDir, s.opts.MeshCertTTL)
	if err != nil {
		return err
	}
	controllersDone := closedChan()
	if !s.opts.DisableControllers {
		if controllersDone, err = runControllers(ctx, loopback, dataDir, s.opts.LBPool, meshCA, s.log); err != nil {
			return fmt.Errorf("controllers: %w", err)
		}
	}

	agentDone := closedChan()
	if s.opts.Agent != nil {
		ao := *s.opts.Agent
		ao.Config, ao.DataDir = loopback, dataDir
		ao.NodeCredentials = certs.nodeCredentials(s.addr)
		if ao.Net.ServiceCIDR == "" {
			ao.Net.ServiceCIDR = cidr.String()
		}
		if len(ao.Net.LBPool) == 0 {
			ao.Net.LBPool = s.opts.LBPool
		}
		if ao.Logger == nil {
			ao.Logger = s.log
		}
		done := make(chan struct{})
		agentDone = done
		go func() {
			defer close(done)
			if err := RunAgent(ctx, ao); err != nil && ctx.Err() == nil {
				s.log.Error("node agent stopped", "component", "agent", "err", err)
			}
		}()
	}

	select {
	case <-ctx.Done():
	case err := <-serveErr:
		return fmt.Errorf("api server: %w", err)
	}
	s.log.Info("shutting down", "component", "daemon")
	api.SetReady(false)
	cancelRequests()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv.Shutdown(shutdownCtx)
	<-agentDone
	<-controllersDone
	select {
	case <-cachesDone:
	case <-time.After(5 * time.Second):
		// etcd's in-process client can deadlock a watch stream that is
		// cancelled while the server is sending to it; closing the client
		// cancels every stream and frees them.
		s.log.Warn("watch caches slow to stop; closing the etcd client", "component", "daemon")
		cli.Close()
		<-cachesDone
	}
	<-registryDone
	return nil
}

func closedChan() <-chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// openEtcd starts the embedded member or connects to the external cluster.
func (s *Server) openEtcd(ctx context.Context, dataDir string) (*clientv3.Client, func(), error) {
	if len(s.opts.EtcdEndpoints) > 0 {
		cli, err := etcdserver.Dial(ctx, s.opts.EtcdEndpoints, s.opts.EtcdTLS, s.log)
		if err != nil {
			return nil, nil, err
		}
		return cli, func() { cli.Close() }, nil
	}
	m, err := etcdserver.StartEmbedded(ctx, etcdserver.Config{Dir: filepath.Join(dataDir, "etcd"), Logger: s.log})
	if err != nil {
		return nil, nil, err
	}
	cli := m.Client()
	return cli, func() { cli.Close(); m.Close() }, nil
}

// certs are the server's TLS material.
type certs struct {
	ca           *pki.CA
	serving      tls.Certificate
	loopbackCert []byte
	loopbackKey  []byte
	pool         *x509.CertPool
}

func loadCerts(dataDir string, addr net.Addr) (*certs, error) {
	dir := pkiDir(dataDir)
	ca, err := pki.LoadOrCreateCA(dir, "ca", "skiff-ca")
	if err != nil {
		return nil, err
	}
	names, ips := servingNames(addr)
	serving, err := keyPair(ca.LoadOrIssue(dir, "apiserver", pki.Leaf{CommonName: "kube-apiserver", DNSNames: names, IPs: ips, Server: true}))
	if err != nil {
		return nil, fmt.Errorf("serving certificate: %w", err)
	}
	// The loopback client certificate is issued in memory on every start.
	lcert, lkey, err := ca.Issue(pki.Leaf{CommonName: "system:apiserver", Organizations: []string{"system:masters"}, Client: true})
	if err != nil {
		return nil, err
	}
	// The admin's certificate is kept; the kubeconfig is rewritten on each
	// start so that it names the address the server listens on now.
	acert, akey, err := ca.LoadOrIssue(dir, "admin", pki.Leaf{CommonName: "admin", Organizations: []string{"system:masters"}, Client: true})
	if err != nil {
		return nil, fmt.Errorf("admin certificate: %w", err)
	}
	if err := ca.WriteKubeconfig(AdminKubeconfigPath(dataDir), "https://"+clientHostPort(addr), "skiff", "admin", acert, akey); err != nil {
		return nil, fmt.Errorf("admin kubeconfig: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return &certs{ca: ca, serving: serving, loopbackCert: lcert, loopbackKey: lkey, pool: pool}, nil
}

func (c *certs) serverTLS() *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{c.serving},
		ClientAuth:   tls.VerifyClientCertIfGiven,
		ClientCAs:    c.pool,
		MinVersion:   tls.VersionTLS12,
		NextProtos:   []string{"h2", "http/1.1"},
	}
}

// loopbackConfig is the client config in-process components use.
func (c *certs) loopbackConfig(addr string) *rest.Config {
	_, port, _ := net.SplitHostPort(addr)
	return &rest.Config{
		Host: "https://127.0.0.1:" + port,
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   c.ca.PEM,
			CertData: c.loopbackCert,
			KeyData:  c.loopbackKey,
		},
		QPS: 500, Burst: 1000,
		UserAgent: "skiff-loopback",
	}
}

func keyPair(certPEM, keyPEM []byte, err error) (tls.Certificate, error) {
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}

// servingNames are the names and addresses the serving certificate covers.
func servingNames(addr net.Addr) ([]string, []net.IP) {
	names := []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}
	if h, err := os.Hostname(); err == nil && h != "" {
		names = append(names, h)
	}
	ips := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	if tcp, ok := addr.(*net.TCPAddr); ok && !tcp.IP.IsUnspecified() && !tcp.IP.IsLoopback() {
		ips = append(ips, tcp.IP)
	}
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && !ipn.IP.IsLinkLocalUnicast() {
				ips = append(ips, ipn.IP)
			}
		}
	}
	return names, ips
}

// clientHostPort is where a local client reaches a listener.
func clientHostPort(addr net.Addr) string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok || tcp.IP.IsUnspecified() {
		_, port, _ := net.SplitHostPort(addr.String())
		return net.JoinHostPort("127.0.0.1", port)
	}
	return addr.String()
}
