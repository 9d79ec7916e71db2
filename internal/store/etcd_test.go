package store_test

import (
	"context"
	"testing"

	"skiff.dev/skiff/internal/etcdserver"
	"skiff.dev/skiff/internal/store"
	"skiff.dev/skiff/internal/store/storetest"
)

func TestEtcdConformance(t *testing.T) {
	m, err := etcdserver.StartEmbedded(context.Background(), etcdserver.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	cli := m.Client()
	t.Cleanup(func() { cli.Close() })
	storetest.Run(t, store.NewEtcd(cli))
}
