package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"skiff.dev/skiff/internal/testenv"
)

// TestRegistryPersistsAcrossRestart pushes an image with crane (a real
// registry client) to the server's embedded registry, restarts the
// server, and pulls the same digest back.
func TestRegistryPersistsAcrossRestart(t *testing.T) {
	dir, addr, reg := t.TempDir(), testenv.FreePort(t), testenv.FreePort(t)
	p := testenv.StartProcess(t, dir, addr, "--registry-listen", reg)
	img, err := random.Image(1<<20, 3)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	ref := reg + "/demo/hello:v1"
	if err := crane.Push(img, ref, crane.Insecure); err != nil {
		t.Fatalf("crane push: %v", err)
	}
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	testenv.StartProcess(t, dir, addr, "--registry-listen", reg)
	got, err := crane.Pull(ref, crane.Insecure)
	if err != nil {
		t.Fatalf("crane pull after restart: %v", err)
	}
	if d, _ := got.Digest(); d != want {
		t.Fatalf("digest after restart %s, want %s", d, want)
	}
	tags, err := crane.ListTags(reg+"/demo/hello", crane.Insecure)
	if err != nil || len(tags) != 1 || tags[0] != "v1" {
		t.Fatalf("tags %v, %v", tags, err)
	}

	// The same registry is under /v2/ on the API port, over TLS, for
	// clients holding the cluster's credentials.
	cfg, err := clientcmd.BuildConfigFromFlags("", p.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := rest.TransportFor(cfg)
	if err != nil {
		t.Fatal(err)
	}
	viaAPI, err := crane.Pull(addr+"/demo/hello:v1", crane.WithTransport(tr))
	if err != nil {
		t.Fatalf("pull through the API port: %v", err)
	}
	if d, _ := viaAPI.Digest(); d != want {
		t.Fatalf("digest through the API port %s, want %s", d, want)
	}
}

// TestSkiffPushPull: skiff build, push to the server's registry, restart
// the server, pull into a fresh data dir: the same image ID.
func TestSkiffPushPull(t *testing.T) {
	bin := testenv.Binary(t)
	dir, addr, reg := t.TempDir(), testenv.FreePort(t), testenv.FreePort(t)
	p := testenv.StartProcess(t, dir, addr, "--registry-listen", reg)
	ctxDir, local, fresh := t.TempDir(), t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(ctxDir, "f"), []byte("pushed\n"), 0o644)
	os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM scratch\nCOPY f /f\n"), 0o644)
	skiff := func(data string, args ...string) string {
		t.Helper()
		out, err := exec.Command(bin, append(args, "--data-dir", data)...).CombinedOutput()
		if err != nil {
			t.Fatalf("skiff %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	name := reg + "/demo/pushed:v1"
	id := strings.TrimSpace(skiff(local, "build", "-q", "-t", name, ctxDir))
	skiff(local, "push", name)
	if err := p.Stop(); err != nil {
		t.Fatal(err)
	}
	testenv.StartProcess(t, dir, addr, "--registry-listen", reg)
	if out := skiff(fresh, "pull", name); !strings.Contains(out, id) {
		t.Fatalf("pull into a fresh data dir gave\n%s\nwant image %s", out, id)
	}
}

// TestCraneCLI drives the embedded registry with the crane command itself
// (built from the go-containerregistry module Skiff already depends on):
// push an archive skiff saved, list tags, read the digest, pull it back.
func TestCraneCLI(t *testing.T) {
	bin := testenv.Binary(t)
	crane := filepath.Join(t.TempDir(), "crane")
	if out, err := exec.Command("go", "build", "-o", crane, "github.com/google/go-containerregistry/cmd/crane").CombinedOutput(); err != nil {
		t.Fatalf("build crane: %v\n%s", err, out)
	}
	reg := testenv.FreePort(t)
	testenv.StartProcess(t, t.TempDir(), testenv.FreePort(t), "--registry-listen", reg)
	data, ctxDir := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(ctxDir, "f"), []byte("crane\n"), 0o644)
	os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte("FROM scratch\nCOPY f /f\n"), 0o644)
	run := func(name string, args ...string) string {
		t.Helper()
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	run(bin, "build", "-q", "-t", "craned:v1", "--data-dir", data, ctxDir)
	archive := filepath.Join(t.TempDir(), "craned.tar")
	run(bin, "save", "-o", archive, "--data-dir", data, "craned:v1")
	ref := reg + "/cli/craned:v1"
	run(crane, "push", "--insecure", archive, ref)
	if tags := run(crane, "ls", "--insecure", reg+"/cli/craned"); tags != "v1" {
		t.Fatalf("crane ls: %q", tags)
	}
	digest := run(crane, "digest", "--insecure", ref)
	if !strings.HasPrefix(digest, "sha256:") {
		t.Fatalf("crane digest: %q", digest)
	}
	pulled := filepath.Join(t.TempDir(), "pulled.tar")
	run(crane, "pull", "--insecure", ref, pulled)
	if out := run(bin, "load", "-i", pulled, "--data-dir", t.TempDir()); !strings.Contains(out, "Loaded image") {
		t.Fatalf("load of crane's pull: %s", out)
	}
}
