package main

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"skiff.dev/skiff/internal/image/layer"
)

// debFile finds busybox-static: $SKIFF_BUSYBOX_DEB, or a fresh
// `apt-get download` (which installs nothing), or the test is skipped.
func debFile(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("SKIFF_BUSYBOX_DEB"); p != "" {
		return p
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "apt-get", "download", "busybox-static")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("skipping: busybox-static not found (set SKIFF_BUSYBOX_DEB) and `apt-get download busybox-static` failed: %v\n%s", err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "busybox-static_*.deb"))
	if len(debs) != 1 {
		t.Skipf("skipping: apt-get download busybox-static gave %v", debs)
	}
	return debs[0]
}

func TestBusyboxImage(t *testing.T) {
	deb := debFile(t)
	out := t.TempDir()
	layoutDir, tarFile := filepath.Join(out, "layout"), filepath.Join(out, "busybox.tar")
	if err := run([]string{"-deb", deb, "-o-layout", layoutDir, "-o-tar", tarFile}); err != nil {
		t.Fatalf("run: %v", err)
	}

	tag, err := name.NewTag(Reference)
	if err != nil {
		t.Fatal(err)
	}
	fromTar, err := tarball.ImageFromPath(tarFile, &tag)
	if err != nil {
		t.Fatalf("read docker archive: %v", err)
	}
	idx, err := layout.ImageIndexFromPath(layoutDir)
	if err != nil {
		t.Fatalf("read oci layout: %v", err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 || im.Manifests[0].Annotations["io.containerd.image.name"] != Reference ||
		im.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != "latest" {
		t.Fatalf("layout index: %+v", im.Manifests)
	}
	fromLayout, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	d1, _ := fromTar.ConfigName()
	d2, _ := fromLayout.ConfigName()
	if d1 != d2 {
		t.Errorf("config digest: docker archive %s, layout %s", d1, d2)
	}

	cfg, err := fromLayout.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Architecture != "amd64" || cfg.OS != "linux" {
		t.Errorf("platform %s/%s, want linux/amd64", cfg.OS, cfg.Architecture)
	}
	if !reflect.DeepEqual(cfg.Config.Cmd, []string{"sh"}) {
		t.Errorf("Cmd = %q", cfg.Config.Cmd)
	}
	if len(cfg.Config.Env) != 1 || cfg.Config.Env[0] != "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" {
		t.Errorf("Env = %q", cfg.Config.Env)
	}
	if !cfg.Created.Equal(time.Unix(0, 0)) || len(cfg.RootFS.DiffIDs) != 1 {
		t.Errorf("created %v, diffIDs %v", cfg.Created, cfg.RootFS.DiffIDs)
	}

	files := layerFiles(t, fromTar)
	for _, applet := range []string{"sh", "ls", "cat", "echo", "wget", "sleep", "env", "id", "mkdir", "rm"} {
		h, ok := files["bin/"+applet]
		if !ok || h.Typeflag != tar.TypeSymlink || h.Linkname != "busybox" {
			t.Errorf("bin/%s: %+v, want a symlink to busybox", applet, h)
		}
	}
	for name, want := range map[string]int64{"bin/busybox": 0o755, "tmp/": 0o1777, "root/": 0o700, "home/": 0o755, "etc/passwd": 0o644, "etc/group": 0o644} {
		if h, ok := files[name]; !ok || h.Mode != want || !h.ModTime.Equal(time.Unix(0, 0)) {
			t.Errorf("%s: %+v, want mode %#o at the epoch", name, h, want)
		}
	}
}

// TestBusyboxImageRuns unpacks the image's layer with Skiff's own unpacker
// and runs its shell in a chroot.
func TestBusyboxImageRuns(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipping: chroot needs root")
	}
	busybox, err := BusyboxFromDeb(debFile(t))
	if err != nil {
		t.Fatal(err)
	}
	img, err := Build(busybox, time.Unix(0, 0).UTC())
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := layers[0].Compressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	root := t.TempDir()
	diffID, err := layer.Unpack(context.Background(), rc, root)
	if err != nil {
		t.Fatalf("unpack: %v", err)
	}
	if want, _ := layers[0].DiffID(); diffID.String() != want.String() {
		t.Errorf("diffID %s, want %s", diffID, want)
	}
	cmd := exec.Command("/bin/sh", "-c", "echo hello from $(id -un) > /tmp/out && cat /tmp/out")
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
	cmd.Dir = "/"
	cmd.Env = []string{"PATH=/bin"}
	out, err := cmd.CombinedOutput()
	if err != nil || string(out) != "hello from root\n" {
		t.Errorf("sh in the image: %q, %v", out, err)
	}
}

func layerFiles(t *testing.T, img v1.Image) map[string]*tar.Header {
	t.Helper()
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %d, %v", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	files := map[string]*tar.Header{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = h
	}
	return files
}

func TestBusyboxImageDeterministic(t *testing.T) {
	busybox, err := BusyboxFromDeb(debFile(t))
	if err != nil {
		t.Fatal(err)
	}
	var digests []v1.Hash
	for range 2 {
		img, err := Build(busybox, time.Unix(0, 0).UTC())
		if err != nil {
			t.Fatal(err)
		}
		d, err := img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		digests = append(digests, d)
	}
	if digests[0] != digests[1] {
		t.Errorf("two builds gave %s and %s", digests[0], digests[1])
	}
}
