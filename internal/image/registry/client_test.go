package registry

// These tests drive the registry with go-containerregistry's own client
// (crane, remote), a real registry client.

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

func mustRef(t testing.TB, s string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(s)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

func TestCranePushPullImageAndIndex(t *testing.T) {
	_, host := testServer(t, t.TempDir())
	img, err := random.Image(4096, 3)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	for _, tag := range []string{"v1", "v2"} {
		if err := crane.Push(img, host+"/team/app:"+tag); err != nil {
			t.Fatalf("push %s: %v", tag, err)
		}
	}
	got, err := crane.Pull(host + "/team/app:v1")
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := got.Digest(); d != want {
		t.Fatalf("pulled digest %s, pushed %s", d, want)
	}
	if err := validate.Image(got); err != nil {
		t.Fatalf("pulled image invalid: %v", err)
	}

	idx, err := random.Index(2048, 2, 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(mustRef(t, host+"/team/multi:latest"), idx); err != nil {
		t.Fatalf("write index: %v", err)
	}
	gotIdx, err := remote.Index(mustRef(t, host+"/team/multi:latest"))
	if err != nil {
		t.Fatal(err)
	}
	wantIdx, _ := idx.Digest()
	if d, _ := gotIdx.Digest(); d != wantIdx {
		t.Fatalf("pulled index %s, pushed %s", d, wantIdx)
	}
	if err := validate.Index(gotIdx); err != nil {
		t.Fatalf("pulled index invalid: %v", err)
	}

	// Cross-repository mount: crane copies between repos of one registry.
	if err := crane.Copy(host+"/team/app:v1", host+"/other/app:copy"); err != nil {
		t.Fatalf("copy: %v", err)
	}

	tags, err := crane.ListTags(host + "/team/app")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(tags, ",") != "v1,v2" {
		t.Fatalf("tags %v", tags)
	}
	repos, err := crane.Catalog(host)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(repos, ",") != "other/app,team/app,team/multi" {
		t.Fatalf("catalog %v", repos)
	}

	// Delete by digest removes the manifest and both tags.
	if err := crane.Delete(host + "/team/app@" + want.String()); err != nil {
		t.Fatalf("delete: %v", err)
	}
	_, err = crane.Manifest(host + "/team/app:v1")
	assertCode(t, err, http.StatusNotFound, codeManifestUnknown)
	if _, err := crane.Manifest(host + "/other/app:copy"); err != nil {
		t.Fatalf("other repo lost its copy: %v", err)
	}
}

// assertCode checks a go-containerregistry error's status and code.
func assertCode(t *testing.T, err error, status int, code string) {
	t.Helper()
	var terr *transport.Error
	if !errors.As(err, &terr) {
		t.Fatalf("want %d %s, got %v", status, code, err)
	}
	if terr.StatusCode != status || len(terr.Errors) == 0 || string(terr.Errors[0].Code) != code {
		t.Fatalf("want %d %s, got %v", status, code, terr)
	}
}

func TestCranePersistsAcrossRestart(t *testing.T) {
	root := t.TempDir()
	_, host := testServer(t, root)
	img, _ := random.Image(8192, 2)
	want, _ := img.Digest()
	if err := crane.Push(img, host+"/persist/me:1.0"); err != nil {
		t.Fatal(err)
	}
	_, host2 := testServer(t, root) // new Registry, new Store, same root
	got, err := crane.Pull(host2 + "/persist/me:1.0")
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := got.Digest(); d != want {
		t.Fatalf("after restart digest %s, want %s", d, want)
	}
	if err := validate.Image(got); err != nil {
		t.Fatal(err)
	}
}
