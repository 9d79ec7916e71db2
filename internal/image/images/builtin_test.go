package images

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"skiff.dev/skiff/internal/image/content"
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

// BenchmarkEnsureBuiltin measures the agent-start cost of the sidecar
// image for a 30 MB binary: a first import, then the no-change check.
func BenchmarkEnsureBuiltin(b *testing.B) {
	ctx := context.Background()
	bin := filepath.Join(b.TempDir(), "skiff-proxy")
	data := make([]byte, 30<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		b.Fatal(err)
	}
	bl := Builtin{Ref: "skiff.dev/proxy:builtin", Files: []BuiltinFile{{Path: "/usr/local/bin/skiff-proxy", Source: bin}}}
	b.Run("first", func(b *testing.B) {
		for b.Loop() {
			s := content.New(b.TempDir())
			if err := s.Init(); err != nil {
				b.Fatal(err)
			}
			if _, err := New(s).EnsureBuiltin(ctx, bl); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("unchanged", func(b *testing.B) {
		s := content.New(b.TempDir())
		if err := s.Init(); err != nil {
			b.Fatal(err)
		}
		svc := New(s)
		if _, err := svc.EnsureBuiltin(ctx, bl); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := svc.EnsureBuiltin(ctx, bl); err != nil {
				b.Fatal(err)
			}
		}
	})
}
