package sidecar

import (
	"encoding/json"
	"net/http"

	"skiff.dev/skiff/internal/mesh/meshconfig"
	"skiff.dev/skiff/internal/mesh/proxy"
)

// healthMux serves /healthz/ready: 200 once a document is applied (the
// capture listeners are bound), 503 before and while draining.
func (s *Sidecar) healthMux() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz/ready", s.readyz)
	return mux
}

func (s *Sidecar) readyz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	switch {
	case s.draining.Load():
		http.Error(w, "draining", http.StatusServiceUnavailable)
	case s.doc.Load() == nil:
		http.Error(w, errNoDocument.Error(), http.StatusServiceUnavailable)
	default:
		_, _ = w.Write([]byte("ready\n"))
	}
}

// statsMux serves /stats/prometheus and the app probes (/app-health/).
func (s *Sidecar) statsMux() http.Handler {
	mux := http.NewServeMux()
	if s.opts.Metrics != nil {
		mux.Handle("GET /stats/prometheus", s.opts.Metrics)
	} else {
		mux.HandleFunc("GET /stats/prometheus", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		})
	}
	mux.HandleFunc("GET /healthz/ready", s.readyz)
	if len(s.opts.AppProbers) > 0 {
		mux.Handle("GET "+meshconfig.AppHealthPrefix, newAppProber(s.opts.AppProbers))
	}
	return mux
}

// adminMux serves the admin port (loopback only): /config_dump is the
// applied document with private keys removed; /ready as Envoy's.
func (s *Sidecar) adminMux() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /config_dump", func(w http.ResponseWriter, _ *http.Request) {
		doc := s.doc.Load()
		if doc == nil {
			http.Error(w, errNoDocument.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(redacted(doc))
	})
	mux.HandleFunc("GET /ready", s.readyz)
	return mux
}

// redacted copies doc without private keys (their fields are null).
func redacted(doc *meshconfig.Sidecar) *meshconfig.Sidecar {
	d := *doc
	p := &d.Proxy
	if p.Identity != nil {
		id := *p.Identity
		id.KeyPEM = nil
		p.Identity = &id
	}
	if len(p.Certificates) > 0 {
		p.Certificates = append([]proxy.Certificate(nil), p.Certificates...)
		for i := range p.Certificates {
			p.Certificates[i].KeyPEM = nil
		}
	}
	if len(p.Clusters) > 0 {
		p.Clusters = append([]proxy.Cluster(nil), p.Clusters...)
		for i := range p.Clusters {
			if t := p.Clusters[i].TLS; t != nil {
				c := *t
				c.ClientKeyPEM = nil
				p.Clusters[i].TLS = &c
			}
		}
	}
	return &d
}
