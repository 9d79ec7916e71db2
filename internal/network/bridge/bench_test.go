package bridge

import (
	"context"
	"io"
	"log/slog"
	"testing"
)

// BenchmarkAttachDetach measures one container joining and leaving the
// default bridge with a published port: veth, address, route, DNAT rule,
// host port, state file, conntrack clean-up.
func BenchmarkAttachDetach(b *testing.B) {
	e := newEnv(b)
	opts := e.options()
	opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	m := e.start(opts)
	ctx := context.Background()
	c := e.container("c")
	b.ResetTimer()
	for b.Loop() {
		if _, err := m.Attach(ctx, AttachRequest{NetworkID: DefaultNetworkName, ContainerID: "c", NetNS: c,
			Ports: []PortMapping{{HostPort: 8080, ContainerPort: 80}}}); err != nil {
			b.Fatal(err)
		}
		if err := m.Detach(ctx, DefaultNetworkName, "c"); err != nil {
			b.Fatal(err)
		}
	}
}
