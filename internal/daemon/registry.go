package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"skiff.dev/skiff/internal/image/content"
	"skiff.dev/skiff/internal/image/registry"
)

// imageStoreDir is where the server keeps image content and refs.
func imageStoreDir(dataDir string) string { return filepath.Join(dataDir, "images") }

// serveRegistry serves the embedded registry over plain HTTP on a
// loopback address (as Docker and crane allow for localhost registries)
// until ctx ends. The same registry is also under /v2/ on the API port,
// over TLS, for authenticated clients.
func serveRegistry(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 30 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}

// newRegistry opens the image store and builds the registry handler.
func newRegistry(dataDir string, log *slog.Logger) (*content.Store, http.Handler, error) {
	st := content.New(imageStoreDir(dataDir))
	if err := st.Init(); err != nil {
		return nil, nil, fmt.Errorf("image store: %w", err)
	}
	return st, registry.New(st, registry.WithLogger(log.With("component", "registry"))), nil
}

// loopbackOnly refuses a registry listen address that is not loopback:
// the plain-HTTP registry takes anonymous writes, which must never leave
// the machine.
func loopbackOnly(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("registry address %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("registry address %q: the plain-HTTP registry listens on loopback only; remote clients use /v2/ on the API port", addr)
	}
	return nil
}
