package proxy

import (
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"strings"
	"sync"
)

// certTable picks a listener's certificate by SNI: an exact name, then a
// "*.suffix" name for the first label, then the default.
type certTable struct {
	exact    map[string]*tls.Certificate
	wildcard map[string]*tls.Certificate // keyed by ".suffix"
	def      *tls.Certificate
}

// add registers cert for hosts, or for its own DNS names when hosts is
// empty. The first certificate to claim a name keeps it.
func (t *certTable) add(hosts []string, cert *tls.Certificate) {
	if len(hosts) == 0 && cert.Leaf != nil {
		hosts = cert.Leaf.DNSNames
	}
	for _, h := range hosts {
		h = strings.ToLower(strings.TrimSuffix(h, "."))
		slot, key := t.exact, h
		if strings.HasPrefix(h, "*.") {
			slot, key = t.wildcard, h[1:]
		}
		if _, taken := slot[key]; !taken {
			slot[key] = cert
		}
	}
}

func (t *certTable) lookup(serverName string) *tls.Certificate {
	if serverName != "" {
		name := hostOnly(serverName)
		if c, ok := t.exact[name]; ok {
			return c
		}
		if i := strings.IndexByte(name, '.'); i > 0 {
			if c, ok := t.wildcard[name[i:]]; ok {
				return c
			}
		}
	}
	return t.def
}

// certCache parses each distinct certificate once across configurations.
type certCache struct {
	mu   sync.Mutex
	byID map[[32]byte]*tls.Certificate
	used map[[32]byte]bool
}

func certID(c *Certificate) [32]byte {
	h := sha256.New()
	h.Write(c.CertPEM)
	h.Write([]byte{0})
	h.Write(c.KeyPEM)
	var id [32]byte
	h.Sum(id[:0])
	return id
}

// get parses c or returns the earlier parse of the same PEM.
func (cc *certCache) get(c *Certificate) (*tls.Certificate, error) {
	if len(c.CertPEM) == 0 || len(c.KeyPEM) == 0 {
		return nil, errors.New("certificate and key PEM required")
	}
	id := certID(c)
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.used == nil {
		cc.used = map[[32]byte]bool{}
	}
	cc.used[id] = true
	if cert, ok := cc.byID[id]; ok {
		return cert, nil
	}
	cert, err := tls.X509KeyPair(c.CertPEM, c.KeyPEM)
	if err != nil {
		return nil, err
	}
	if cc.byID == nil {
		cc.byID = map[[32]byte]*tls.Certificate{}
	}
	cc.byID[id] = &cert
	return &cert, nil
}

// prune forgets certificates not used since the last prune (call after a
// configuration was published).
func (cc *certCache) prune() {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	for id := range cc.byID {
		if !cc.used[id] {
			delete(cc.byID, id)
		}
	}
	cc.used = nil
}
