package sidecar

import (
	"errors"
	"testing"

	"skiff.dev/skiff/internal/mesh/authz"
	"skiff.dev/skiff/internal/mesh/proxy"
)

func TestAuthorizeConn(t *testing.T) {
	eng, err := authz.New(authz.Config{Policies: []authz.Policy{
		{Namespace: "db", Name: "deny-3306-from-web", Action: authz.Deny, Rules: []authz.Rule{{
			From: []authz.Source{{Principals: []string{"cluster.local/ns/web/sa/web"}}},
			To:   []authz.Operation{{Ports: []string{"3306"}}},
		}}},
		{Namespace: "db", Name: "allow-mesh", Action: authz.Allow, Rules: []authz.Rule{{
			From: []authz.Source{{IPBlocks: []string{"10.244.0.0/16"}}},
		}}},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := New(Options{})
	conn := func(src, dst, principal string) *proxy.TCPConn {
		return &proxy.TCPConn{Direction: proxy.Inbound, Source: src, OriginalDst: dst, PeerPrincipal: principal}
	}
	cases := []struct {
		name    string
		c       *proxy.TCPConn
		engine  bool
		allowed bool
	}{
		{name: "no engine yet", c: conn("203.0.113.1:1", "10.244.0.9:3306", ""), allowed: true},
		{name: "denied principal and port", engine: true, c: conn("10.244.0.3:4000", "10.244.0.9:3306", "cluster.local/ns/web/sa/web")},
		{name: "other port", engine: true, c: conn("10.244.0.3:4000", "10.244.0.9:5432", "cluster.local/ns/web/sa/web"), allowed: true},
		{name: "other principal", engine: true, c: conn("10.244.0.3:4000", "10.244.0.9:3306", "cluster.local/ns/api/sa/api"), allowed: true},
		{name: "source outside the allowed block", engine: true, c: conn("203.0.113.1:4000", "10.244.0.9:5432", "")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.engine {
				s.engine.Store(eng)
			} else {
				s.engine.Store(nil)
			}
			err := s.authorizeConn(tc.c)
			if (err == nil) != tc.allowed {
				t.Fatalf("err %v, want allowed %v", err, tc.allowed)
			}
			if err != nil && !errors.Is(err, errDenied) {
				t.Errorf("err %v is not errDenied", err)
			}
		})
	}
}

// BenchmarkAuthorizeConn is the per-connection cost the hook adds to an
// inbound TCP connection, with one DENY and one ALLOW policy.
func BenchmarkAuthorizeConn(b *testing.B) {
	eng, err := authz.New(authz.Config{Policies: []authz.Policy{
		{Namespace: "db", Name: "deny", Action: authz.Deny, Rules: []authz.Rule{{
			From: []authz.Source{{Principals: []string{"cluster.local/ns/web/sa/web"}}},
			To:   []authz.Operation{{Ports: []string{"3306"}}},
		}}},
		{Namespace: "db", Name: "allow", Action: authz.Allow, Rules: []authz.Rule{{
			From: []authz.Source{{IPBlocks: []string{"10.244.0.0/16"}}},
		}}},
	}}, nil)
	if err != nil {
		b.Fatal(err)
	}
	s := New(Options{})
	s.engine.Store(eng)
	c := &proxy.TCPConn{Direction: proxy.Inbound, Source: "10.244.0.3:4000", OriginalDst: "10.244.0.9:5432",
		PeerPrincipal: "cluster.local/ns/api/sa/api"}
	b.ReportAllocs()
	for b.Loop() {
		if err := s.authorizeConn(c); err != nil {
			b.Fatal(err)
		}
	}
}
