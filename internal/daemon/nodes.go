package daemon

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"skiff.dev/skiff/internal/nodeclient"
)

// newNodeClient is how the API server reaches node agents: Nodes are
// read through the loopback client, agents are called with the loopback
// client certificate (system:apiserver, signed by the cluster CA, which
// the agents require). Agents serve self-signed certificates, which are
// not verified, as kube-apiserver does by default.
func newNodeClient(c *certs, loopback *rest.Config) (*nodeclient.Client, error) {
	pair, err := tls.X509KeyPair(c.loopbackCert, c.loopbackKey)
	if err != nil {
		return nil, fmt.Errorf("node client certificate: %w", err)
	}
	client, err := kubernetes.NewForConfig(loopback)
	if err != nil {
		return nil, fmt.Errorf("node client: %w", err)
	}
	return nodeclient.New(client.CoreV1().Nodes(), &tls.Config{
		Certificates:       []tls.Certificate{pair},
		InsecureSkipVerify: true, // agents' serving certificates are self-signed
	}), nil
}

// clusterCAs is the CA a node's agent server verifies clients against:
// the one its API config trusts. Nil when the config names none.
func clusterCAs(cfg *rest.Config) (*x509.CertPool, error) {
	data := cfg.CAData
	if len(data) == 0 && cfg.CAFile != "" {
		b, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("cluster CA: %w", err)
		}
		data = b
	}
	if len(data) == 0 {
		return nil, nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) {
		return nil, errors.New("cluster CA: no certificate in the CA data")
	}
	return pool, nil
}
