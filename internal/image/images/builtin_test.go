package images

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestEnsureBuiltin makes the image twice (same ID, nothing new), reads
// its configuration back, and remakes it when the file changes.
func TestEnsureBuiltin(t *testing.T) {
	ctx := context.Background()
	svc := New(newStore(t))
	bin := filepath.Join(t.TempDir(), "skiff-proxy")
	if err := os.WriteFile(bin, []byte("#!/bin/true\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	b := Builtin{
		Ref:        "skiff.dev/proxy:builtin",
		Files:      []BuiltinFile{{Path: "/usr/local/bin/skiff-proxy", Source: bin}},
		Entrypoint: []string{"/usr/local/bin/skiff-proxy"},
		User:       "1337",
	}
	id, err := svc.EnsureBuiltin(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	again, err := svc.EnsureBuiltin(ctx, b)
	if err != nil || again != id {
		t.Fatalf("second EnsureBuiltin = %s, %v; want %s", again, err, id)
	}
	r, err := svc.Resolve(ctx, "skiff.dev/proxy:builtin")
	if err != nil {
		t.Fatal(err)
	}
	if r.ID.String() != id || len(r.Layers) != 1 || !slices.Equal(r.Config.Config.Entrypoint, b.Entrypoint) || r.Config.Config.User != "1337" {
		t.Errorf("resolved %+v", r)
	}
	if err := os.WriteFile(bin, []byte("#!/bin/false\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	changed, err := svc.EnsureBuiltin(ctx, b)
	if err != nil || changed == id {
		t.Fatalf("after a change: %s, %v (old %s)", changed, err, id)
	}
	if r, _ := svc.Resolve(ctx, "skiff.dev/proxy:builtin"); r.ID.String() != changed {
		t.Errorf("ref points at %s, want %s", r.ID, changed)
	}
}
