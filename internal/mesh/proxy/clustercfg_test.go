package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"skiff.dev/skiff/internal/errdefs"
)

func TestClusterPolicyValidation(t *testing.T) {
	ca := newTestCA(t, "mesh")
	for _, tc := range []struct {
		name     string
		cluster  Cluster
		identity *Identity
		want     string // in the error; "" means valid
	}{
		{"consistent hash without a policy", Cluster{LB: LBConsistentHash}, nil, "clusters[\"c\"].hash: required"},
		{"hash with another lb", Cluster{LB: LBRandom, Hash: &HashPolicy{Header: "x"}}, nil, "clusters[\"c\"].hash: set but lb"},
		{"hash with two keys", Cluster{Hash: &HashPolicy{Header: "x", SourceIP: true}}, nil, "exactly one of header, cookie"},
		{"hash with no key", Cluster{Hash: &HashPolicy{}}, nil, "exactly one of header, cookie"},
		{"bad hash header", Cluster{Hash: &HashPolicy{Header: "a b"}}, nil, "clusters[\"c\"].hash.header"},
		{"cookie without name", Cluster{Hash: &HashPolicy{Cookie: &HashCookie{}}}, nil, "clusters[\"c\"].hash.cookie.name"},
		{"negative cookie ttl", Cluster{Hash: &HashPolicy{Cookie: &HashCookie{Name: "s", TTL: -1}}}, nil, "hash.cookie.ttl"},
		{"ring too large", Cluster{Hash: &HashPolicy{SourceIP: true, MinimumRingSize: 1 << 30}}, nil, "hash.minimumRingSize"},
		{"negative pool", Cluster{Pool: &ConnectionPool{MaxConnections: -1}}, nil, "clusters[\"c\"].pool"},
		{"negative outlier", Cluster{Outlier: &OutlierDetection{Consecutive5xx: -1}}, nil, "clusters[\"c\"].outlier"},
		{"ejection percent", Cluster{Outlier: &OutlierDetection{Consecutive5xx: 1, MaxEjectionPercent: 101}}, nil, "outlier.maxEjectionPercent"},
		{"health percent", Cluster{Outlier: &OutlierDetection{Consecutive5xx: 1, MinHealthPercent: -1}}, nil, "outlier.minHealthPercent"},
		{"tls mode", Cluster{TLS: &UpstreamTLS{Mode: "BOGUS"}}, nil, "clusters[\"c\"].tls.mode"},
		{"istio mutual without identity", Cluster{TLS: &UpstreamTLS{Mode: TLSIstioMutual}}, nil, "ISTIO_MUTUAL needs the config's identity"},
		{"mutual without cert", Cluster{TLS: &UpstreamTLS{Mode: TLSMutual}}, nil, "clusters[\"c\"].tls.clientCertPEM"},
		{"bad CA", Cluster{TLS: &UpstreamTLS{Mode: TLSSimple, CACertPEM: []byte("junk")}}, nil, "clusters[\"c\"].tls.caCertPEM"},
		{"bad identity", Cluster{}, &Identity{CertPEM: []byte("x")}, "identity: certificate"},
		{"tcp with h2c", Cluster{TCP: true, Protocol: ProtocolH2C}, nil, "TCP cluster has no HTTP protocol"},
		{"tcp hashing a header", Cluster{TCP: true, Hash: &HashPolicy{Header: "x"}}, nil, "source IP only"},
		{"valid everything", Cluster{Hash: &HashPolicy{Cookie: &HashCookie{Name: "s", TTL: time.Second}},
			Pool:    &ConnectionPool{MaxConnections: 1, MaxPendingRequests: 1, MaxRequestsPerConnection: 1, MaxRetries: 1, IdleTimeout: time.Second},
			Outlier: &OutlierDetection{Consecutive5xx: 1, Interval: time.Second, BaseEjectionTime: time.Second, MaxEjectionPercent: 100, MinHealthPercent: 50},
			TLS:     &UpstreamTLS{Mode: TLSIstioMutual, Auto: true, SubjectAltNames: []string{"spiffe://td/ns/a/sa/b"}}},
			ca.identity(t, "spiffe://td/ns/a/sa/c"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cl := tc.cluster
			cl.Name = "c"
			routes := []Route{{DirectResponse: &DirectResponse{Status: 200}}}
			if !cl.TCP {
				routes = []Route{{Clusters: to("c")}}
			}
			cfg := simple(routes, cl)
			cfg.Identity = tc.identity
			_, _, err := compile(cfg, nil, (&certCache{}).get)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tc.want == "":
			case err == nil:
				t.Fatalf("no error, want %q", tc.want)
			case !errors.Is(err, errdefs.ErrInvalid) || !strings.Contains(err.Error(), tc.want):
				t.Fatalf("error %v, want ErrInvalid with %q", err, tc.want)
			}
		})
	}
	t.Run("route to a tcp cluster", func(t *testing.T) {
		_, _, err := compile(simple([]Route{{Clusters: to("c")}}, Cluster{Name: "c", TCP: true}), nil, nil)
		if err == nil || !strings.Contains(err.Error(), `"c" is a TCP cluster`) {
			t.Fatalf("error %v", err)
		}
	})
}

// A cluster whose policy is unchanged keeps its state (pools, breaker,
// ejections) across Updates, also when only its endpoints change; a
// changed policy makes a new one.
func TestPolicyClustersSurviveUpdate(t *testing.T) {
	base := Cluster{Name: "c", Hash: &HashPolicy{Header: "x"}, Pool: &ConnectionPool{MaxConnections: 3},
		Outlier: &OutlierDetection{Consecutive5xx: 2}, TLS: &UpstreamTLS{Mode: TLSSimple, CACertPEM: newTestCA(t, "x").certPEM},
		Metadata: map[string]string{"v": "1"}, Endpoints: eps("127.0.0.1:1001")}
	p := New(Options{})
	if err := p.Update(simple([]Route{{Clusters: to("c")}}, base)); err != nil {
		t.Fatal(err)
	}
	first := p.snap.Load().clusters["c"]
	same := base
	same.Endpoints = eps("127.0.0.1:1001", "127.0.0.1:1002")
	same.Metadata = map[string]string{"v": "2"}
	same.Hash = &HashPolicy{Header: "x"}
	if err := p.Update(simple([]Route{{Clusters: to("c")}}, same)); err != nil {
		t.Fatal(err)
	}
	if got := p.snap.Load().clusters["c"]; got != first {
		t.Error("unchanged policy: cluster replaced")
	} else if len(got.endpoints()) != 2 || got.metadata()["v"] != "2" || got.ring.Load() == nil || len(got.ring.Load().eps) == 0 {
		t.Errorf("kept cluster not updated: %d endpoints, metadata %v", len(got.endpoints()), got.metadata())
	}
	changed := same
	changed.Pool = &ConnectionPool{MaxConnections: 4}
	if err := p.Update(simple([]Route{{Clusters: to("c")}}, changed)); err != nil {
		t.Fatal(err)
	}
	if p.snap.Load().clusters["c"] == first {
		t.Error("changed pool: cluster kept")
	}
}

func TestDialEndpoint(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); c.Close() }()
		}
	}()
	dead := closedAddr(t)
	p := New(Options{})
	cfg := simple([]Route{{DirectResponse: &DirectResponse{Status: 200}}}, Cluster{Name: "tcp", TCP: true, LB: LBRoundRobin,
		Pool:      &ConnectionPool{MaxConnections: 1},
		Outlier:   &OutlierDetection{ConsecutiveGatewayErrors: 1, MaxEjectionPercent: 100, Interval: time.Hour},
		Endpoints: eps(dead, ln.Addr().String())})
	if err := p.Update(cfg); err != nil {
		t.Fatal(err)
	}
	cl := p.snap.Load().clusters["tcp"]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for i := range 3 {
		conn, ep, err := cl.dialEndpoint(ctx, "10.0.0.1:5555")
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		if ep.addr != ln.Addr().String() {
			t.Fatalf("dial %d: endpoint %s", i, ep.addr)
		}
		if _, err := conn.Write([]byte("ping")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4)
		if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "ping" {
			t.Fatalf("echo %q %v", buf, err)
		}
		if ep.active.Load() != 1 || cl.cb.conns.Load() != 1 {
			t.Errorf("active %d, connections %d while open", ep.active.Load(), cl.cb.conns.Load())
		}
		conn.Close()
		if ep.active.Load() != 0 || cl.cb.conns.Load() != 0 {
			t.Errorf("active %d, connections %d after close", ep.active.Load(), cl.cb.conns.Load())
		}
	}
	if st := cl.status(); !st.Endpoints[0].Ejected {
		t.Errorf("the dead endpoint is not ejected: %+v", st.Endpoints[0])
	}
}
