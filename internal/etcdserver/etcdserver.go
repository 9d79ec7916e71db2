// Package etcdserver runs an embedded etcd member and connects clients to
// etcd, embedded or external. The daemon and the `skiff etcd` command use it.
package etcdserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3client"
)

// Config for an embedded member.
type Config struct {
	// Dir holds the member's data.
	Dir string
	// ClientURLs, when set, also serve the member to other processes
	// (`skiff etcd`, or servers sharing it). Empty: in-process only.
	ClientURLs []string
	// PeerURL is where other members reach this one; empty uses a unix
	// socket in Dir, for a single member.
	PeerURL string
	// Name of the member (default "skiff").
	Name   string
	Logger *slog.Logger
}

// Embedded is a running embedded etcd member.
type Embedded struct {
	etcd *embed.Etcd
}

// StartEmbedded starts a member and waits until it serves or ctx ends.
func StartEmbedded(ctx context.Context, c Config) (*Embedded, error) {
	if c.Name == "" {
		c.Name = "skiff"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("etcd data dir: %w", err)
	}
	cfg := embed.NewConfig()
	cfg.Name = c.Name
	cfg.Dir = c.Dir
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(NewZapLogger(c.Logger.With("component", "etcd"), slog.LevelWarn))
	peer := c.PeerURL
	if peer == "" {
		// A single member needs a peer address but nothing dials it: a
		// loopback port the kernel picks never collides with another server.
		peer = "http://127.0.0.1:0"
	}
	pu, err := parseURLs([]string{peer})
	if err != nil {
		return nil, err
	}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = pu, pu
	cfg.InitialCluster = cfg.InitialClusterFromName(c.Name)
	if c.PeerURL == "" {
		// A lone member elects itself after one election timeout; with no
		// peers to wait for, a short one makes a start take ~50 ms, not ~400.
		cfg.TickMs, cfg.ElectionMs = 10, 50
	}
	clients := c.ClientURLs
	if len(clients) == 0 {
		clients = []string{"http://127.0.0.1:0"}
	}
	cu, err := parseURLs(clients)
	if err != nil {
		return nil, err
	}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = cu, cu
	// Skiff compacts history itself (store.RunCompactor), the same way for
	// embedded and external etcd.
	cfg.AutoCompactionMode, cfg.AutoCompactionRetention = "periodic", "0"
	cfg.SnapshotCount = 10000
	cfg.QuotaBackendBytes = 8 << 30
	cfg.ListenMetricsUrls = nil
	cfg.Metrics = "basic"
	// Progress notifications let idle watches move their bookmarks forward.
	cfg.WatchProgressNotifyInterval = 10 * time.Second

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("start embedded etcd in %s: %w", c.Dir, err)
	}
	select {
	case <-e.Server.ReadyNotify():
		return &Embedded{etcd: e}, nil
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("embedded etcd: %w", err)
	case <-ctx.Done():
		e.Close()
		return nil, ctx.Err()
	}
}

// Client returns an in-process client: no sockets, no serialization.
func (m *Embedded) Client() *clientv3.Client { return v3client.New(m.etcd.Server) }

// Err reports a fatal error of the running member.
func (m *Embedded) Err() <-chan error { return m.etcd.Err() }

// Close stops the member, flushing its state.
func (m *Embedded) Close() { m.etcd.Close() }

func parseURLs(ss []string) ([]url.URL, error) {
	out := make([]url.URL, 0, len(ss))
	for _, s := range ss {
		u, err := url.Parse(s)
		if err != nil {
			return nil, fmt.Errorf("etcd url %q: %w", s, err)
		}
		if u.Scheme == "unix" && u.Host == "" {
			// etcd takes the socket path from the host part.
			u.Host, u.Path = u.Path, ""
		}
		out = append(out, *u)
	}
	return out, nil
}

// ClientTLS names the files of a client certificate for an external etcd.
type ClientTLS struct {
	CAFile, CertFile, KeyFile string
}

// Dial connects to an external etcd cluster and checks that it answers.
func Dial(ctx context.Context, endpoints []string, tlsFiles ClientTLS, log *slog.Logger) (*clientv3.Client, error) {
	if len(endpoints) == 0 {
		return nil, errors.New("no etcd endpoints")
	}
	var tlsCfg *tls.Config
	if tlsFiles != (ClientTLS{}) {
		info := transport.TLSInfo{TrustedCAFile: tlsFiles.CAFile, CertFile: tlsFiles.CertFile, KeyFile: tlsFiles.KeyFile}
		var err error
		if tlsCfg, err = info.ClientConfig(); err != nil {
			return nil, fmt.Errorf("etcd client tls: %w", err)
		}
	}
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 5 * time.Second,
		TLS:         tlsCfg,
		Logger:      NewZapLogger(log.With("component", "etcd-client"), slog.LevelWarn),
		Context:     ctx,
	})
	if err != nil {
		return nil, fmt.Errorf("connect to etcd %v: %w", endpoints, err)
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := cli.Status(cctx, endpoints[0]); err != nil {
		cli.Close()
		return nil, fmt.Errorf("etcd %v does not answer: %w", endpoints, err)
	}
	return cli, nil
}
