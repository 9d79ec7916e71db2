package registry

import (
	"crypto/rand"
	"io"
	"net/http"
	"testing"

	"github.com/opencontainers/go-digest"
)

// BenchmarkBlob100MB pushes (POST, one streamed PATCH, PUT) and pulls
// (GET, digest-verified by the store) a 100 MB random layer over loopback.
func BenchmarkBlob100MB(b *testing.B) {
	layer := make([]byte, 100<<20)
	_, _ = rand.Read(layer)
	d := digest.FromBytes(layer).String()

	b.Run("push", func(b *testing.B) {
		b.SetBytes(int64(len(layer)))
		for b.Loop() {
			b.StopTimer()
			srv, _ := testServer(b, b.TempDir())
			b.StartTimer()
			pushBlob(b, srv.URL, "bench", layer)
			b.StopTimer()
			srv.Close()
			b.StartTimer()
		}
	})
	b.Run("pull", func(b *testing.B) {
		srv, _ := testServer(b, b.TempDir())
		pushBlob(b, srv.URL, "bench", layer)
		b.SetBytes(int64(len(layer)))
		for b.Loop() {
			resp, err := http.Get(srv.URL + "/v2/bench/blobs/" + d)
			if err != nil {
				b.Fatal(err)
			}
			h := digest.Canonical.Digester()
			n, err := io.Copy(h.Hash(), resp.Body)
			resp.Body.Close()
			if err != nil || n != int64(len(layer)) || h.Digest().String() != d {
				b.Fatalf("pull: %d bytes, %v", n, err)
			}
		}
	})
}
