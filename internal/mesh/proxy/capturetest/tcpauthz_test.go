package capturetest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"skiff.dev/skiff/internal/mesh/authz"
	"skiff.dev/skiff/internal/mesh/proxy"
	"skiff.dev/skiff/internal/mesh/sidecar"
)

// TestInboundTCPAuthorization: the proxy asks Options.AuthorizeConn
// about every inbound connection a TCP chain forwards, before dialing;
// with the mesh's engine behind it (as the sidecar wires it) a DENY
// policy on one port closes that port's connections and leaves the
// other's alone.
func TestInboundTCPAuthorization(t *testing.T) {
	netnsSetup(t)
	greeter(t, podIP+":2535", "denied")
	greeter(t, podIP+":2536", "allowed")
	eng, err := authz.New(authz.Config{Policies: []authz.Policy{{
		Namespace: "default", Name: "deny-2535", Action: authz.Deny,
		// An HTTP-only field in a DENY rule is dropped for TCP: the
		// rule denies the whole port.
		Rules: []authz.Rule{{To: []authz.Operation{{Ports: []string{"2535"}, Methods: []string{"GET"}}}}},
	}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var asked []proxy.TCPConn
	authorize := func(c *proxy.TCPConn) error {
		mu.Lock()
		asked = append(asked, *c)
		mu.Unlock()
		req := sidecar.ConnRequest(c)
		if d := eng.CheckConn(&req); !d.Allowed {
			return errors.New(d.Reason())
		}
		return nil
	}
	cfg := &proxy.Config{
		Version: "1",
		Listeners: []proxy.Listener{{Name: "virtualInbound", Address: "0.0.0.0:" + strconv.Itoa(inboundPort),
			Capture: &proxy.Capture{Direction: proxy.Inbound, Chains: []proxy.FilterChain{
				{Name: "inbound|2535", Match: proxy.ChainMatch{Port: 2535}, MTLS: proxy.MTLSDisable},
				{Name: "inbound|2536", Match: proxy.ChainMatch{Port: 2536}, MTLS: proxy.MTLSDisable},
			}}}},
	}
	runProxyWith(t, cfg, proxy.Options{AuthorizeConn: authorize})

	talkToGreeter(t, dialFromClient(t, podIP+":2536"), "allowed")

	c := dialFromClient(t, podIP+":2535")
	b, err := io.ReadAll(c)
	if len(b) > 0 {
		t.Fatalf("denied connection got %q (err %v), want it closed", b, err)
	}

	mu.Lock()
	defer mu.Unlock()
	if len(asked) != 2 {
		t.Fatalf("AuthorizeConn asked %d times, want 2: %+v", len(asked), asked)
	}
	for _, a := range asked {
		if a.Direction != proxy.Inbound || a.UpstreamHost != "" || a.Source == "" {
			t.Errorf("asked %+v: want inbound, a source, no upstream yet", a)
		}
	}
	if asked[1].FilterChain != "inbound|2535" || asked[1].OriginalDst != podIP+":2535" {
		t.Errorf("second ask %+v, want chain inbound|2535 to %s:2535", asked[1], podIP)
	}
}

// runProxyWith serves cfg with opts until the test ends.
func runProxyWith(t *testing.T, cfg *proxy.Config, opts proxy.Options) {
	t.Helper()
	opts.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts.ShutdownTimeout = time.Second
	p := proxy.New(opts)
	if err := p.Update(cfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("proxy did not stop")
		}
	})
	select {
	case <-p.Ready():
	case err := <-done:
		t.Fatalf("run: %v", err)
	}
}
