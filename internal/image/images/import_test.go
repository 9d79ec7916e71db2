package images

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"skiff.dev/skiff/internal/image/content"
)

func TestImport(t *testing.T) {
	ctx := context.Background()
	svc := New(content.New(t.TempDir()))
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct{ name, body string }{{"etc/hostname", "box\n"}, {"bin/hello", "#!/bin/sh\necho hi\n"}} {
		tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o755, Size: int64(len(f.body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(f.body))
	}
	tw.Close()
	id, err := svc.Import(ctx, bytes.NewReader(buf.Bytes()), "rootfs:v1")
	if err != nil {
		t.Fatal(err)
	}
	im, err := svc.Inspect(ctx, "rootfs:v1")
	if err != nil {
		t.Fatal(err)
	}
	if im.ID != id || len(im.RootFS.Layers) != 1 || im.Os != "linux" {
		t.Fatalf("imported image: %+v (id %s)", im, id)
	}
	h, err := svc.History(ctx, "rootfs:v1")
	if err != nil || len(h) != 1 || !strings.Contains(h[0].Comment, "Imported") {
		t.Fatalf("history %+v, %v", h, err)
	}
	if _, err := svc.Import(ctx, strings.NewReader("not a tarball"), "bad:v1"); !errors.Is(err, content.ErrInvalid) {
		t.Fatalf("import of garbage: %v, want ErrInvalid", err)
	}
	if _, err := svc.Inspect(ctx, "bad:v1"); !errors.Is(err, content.ErrNotFound) {
		t.Fatalf("garbage import left a name: %v", err)
	}
}
