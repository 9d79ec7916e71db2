package images

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"skiff.dev/skiff/internal/image/build"
)

// TestBuiltImageRoundTrip saves, removes and loads an image made by
// skiff build: the image ID, the layers and even the manifest digest
// (RepoDigests) survive.
func TestBuiltImageRoundTrip(t *testing.T) {
	ctx := context.Background()
	store := newStore(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "hello.txt"), []byte("hello\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	df := "FROM scratch\nCOPY hello.txt /\nLABEL a=b\nENV X=1\nEXPOSE 80/tcp\nHEALTHCHECK CMD [\"/hello\"]\nCMD [\"/hello\"]\n"
	id, err := build.New(store, nil).Build(ctx, build.Options{ContextDir: dir, DockerfileBytes: []byte(df), Tags: []string{"built:1"}})
	if err != nil {
		t.Fatal(err)
	}
	svc := New(store)
	before, err := svc.Inspect(ctx, "built:1")
	if err != nil {
		t.Fatal(err)
	}
	if before.ID != id.String() || before.Config.Labels["a"] != "b" || before.Config.Healthcheck == nil || len(before.Config.ExposedPorts) != 1 {
		t.Fatalf("inspect = %+v / %+v", before, before.Config)
	}
	h, err := svc.History(ctx, "built:1")
	if err != nil {
		t.Fatal(err)
	}
	if len(h) < 2 || h[0].ID != id.String() || h[0].Size != 0 || h[len(h)-1].Size == 0 {
		t.Fatalf("history = %+v", h)
	}
	var buf bytes.Buffer
	if err := svc.Save(ctx, &buf, "built:1"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Remove(ctx, "built:1", false); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Inspect(ctx, id.String()); err == nil {
		t.Fatal("image still there after rmi")
	}
	if _, err := svc.Load(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	after, err := svc.Inspect(ctx, "built:1")
	if err != nil {
		t.Fatal(err)
	}
	if after.ID != before.ID || after.RepoDigests[0] != before.RepoDigests[0] || after.RootFS.Layers[0] != before.RootFS.Layers[0] {
		t.Fatalf("round trip changed the image:\n%+v\n%+v", before, after)
	}
}
