package daemon

import (
	"context"
	"log/slog"
	"time"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"skiff.dev/skiff/internal/controllers/csrsigner"
	meshca "skiff.dev/skiff/internal/mesh/ca"
	meshidentity "skiff.dev/skiff/internal/mesh/identity"
	"skiff.dev/skiff/internal/pki"
)

// The mesh's workload identities. On the server: the mesh CA (a root of
// its own in DataDir/pki/mesh-ca.{crt,key}), the CSR signer and the roots
// publisher among the control loops. On a node: the identity Manager,
// which asks for its pods' certificates with the node's own credentials
// (system:node:NAME) so that the signer can check the pods run there.

// loadMeshCA loads or creates the mesh CA.
func loadMeshCA(dataDir string, ttl time.Duration) (*meshca.CA, error) {
	return meshca.LoadOrCreate(pkiDir(dataDir), meshca.Options{TTL: ttl})
}

// addMeshLoops adds the signer and the roots publisher to the control
// loops when there is a mesh CA.
func addMeshLoops(loops map[string]loop, d controllerDeps) {
	if d.meshCA == nil {
		return
	}
	loops["csr-signer"] = csrsigner.New(d.client, d.factory, d.recorder("certificatesigningrequest-signer"), d.log, csrsigner.Options{CA: d.meshCA})
	loops["mesh-root-publisher"] = csrsigner.NewRootPublisher(d.client, d.factory, d.log, d.meshCA.RootsPEM())
}

// nodeCredentials returns a function giving a node of this server its own
// client identity: a certificate of the cluster CA for
// system:node:NAME in group system:nodes, issued in memory.
func (c *certs) nodeCredentials(addr string) func(nodeName string) (*rest.Config, error) {
	return func(nodeName string) (*rest.Config, error) {
		certPEM, keyPEM, err := c.ca.Issue(pki.Leaf{CommonName: "system:node:" + nodeName, Organizations: []string{"system:nodes"}, Client: true})
		if err != nil {
			return nil, err
		}
		cfg := rest.CopyConfig(c.loopbackConfig(addr))
		cfg.CertData, cfg.KeyData = certPEM, keyPEM
		cfg.UserAgent = "skiff-node/" + nodeName
		return cfg, nil
	}
}

// runMeshIdentity starts the node's identity Manager until ctx ends or
// stop is called; stop returns once it has stopped. cfg should carry the
// node's credentials.
func runMeshIdentity(ctx context.Context, cfg *rest.Config, nodeName string, log *slog.Logger) (m *meshidentity.Manager, stop func(), err error) {
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	factory := informers.NewSharedInformerFactory(client, 0)
	m = meshidentity.New(client, factory, log, meshidentity.Options{NodeName: nodeName})
	factory.Start(ctx.Done())
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer factory.Shutdown()
		if err := m.Run(ctx); err != nil {
			log.Error("mesh identity stopped", "component", "mesh-identity", "err", err)
		}
	}()
	return m, func() { cancel(); <-done }, nil
}
