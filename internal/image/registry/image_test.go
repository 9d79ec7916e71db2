package registry

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/opencontainers/go-digest"
)

// pushBlob uploads b to repo with POST + PATCH + PUT.
func pushBlob(t testing.TB, base, repo string, b []byte) string {
	t.Helper()
	d := digest.FromBytes(b).String()
	resp := do(t, "POST", base+"/v2/"+repo+"/blobs/uploads/", nil, nil)
	if resp.StatusCode != 202 {
		t.Fatalf("POST upload: %d", resp.StatusCode)
	}
	loc := resp.Header.Get("Location")
	if resp = do(t, "PATCH", base+loc, nil, bytes.NewReader(b)); resp.StatusCode != 202 {
		t.Fatalf("PATCH: %d", resp.StatusCode)
	}
	if resp = do(t, "PUT", base+loc+"?digest="+d, nil, nil); resp.StatusCode != 201 {
		t.Fatalf("PUT upload: %d", resp.StatusCode)
	}
	return d
}

func do(t testing.TB, method, url string, hdr map[string]string, body io.Reader) *http.Response {
	t.Helper()
	r, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// pushImage pushes img's layers, config and manifest to repo:ref.
func pushImage(t testing.TB, base, repo, ref string, img v1.Image) string {
	t.Helper()
	layers, _ := img.Layers()
	for _, l := range layers {
		rc, _ := l.Compressed()
		b, _ := io.ReadAll(rc)
		rc.Close()
		pushBlob(t, base, repo, b)
	}
	cfg, _ := img.RawConfigFile()
	pushBlob(t, base, repo, cfg)
	m, _ := img.RawManifest()
	mt, _ := img.MediaType()
	resp := do(t, "PUT", base+"/v2/"+repo+"/manifests/"+ref, map[string]string{"Content-Type": string(mt)}, bytes.NewReader(m))
	if resp.StatusCode != 201 {
		t.Fatalf("PUT manifest: %d", resp.StatusCode)
	}
	return resp.Header.Get("Docker-Content-Digest")
}

// pullImage fetches repo:ref and every blob it names, checking digests.
func pullImage(t testing.TB, base, repo, ref string) string {
	t.Helper()
	resp, m := req(t.(*testing.T), "GET", base+"/v2/"+repo+"/manifests/"+ref, nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("GET manifest %s:%s: %d %s", repo, ref, resp.StatusCode, m)
	}
	d := digest.FromBytes(m).String()
	if resp.Header.Get("Docker-Content-Digest") != d {
		t.Fatalf("manifest digest header %s, body %s", resp.Header.Get("Docker-Content-Digest"), d)
	}
	mf, err := v1.ParseManifest(bytes.NewReader(m))
	if err != nil {
		t.Fatal(err)
	}
	for _, desc := range append([]v1.Descriptor{mf.Config}, mf.Layers...) {
		resp, b := req(t.(*testing.T), "GET", base+"/v2/"+repo+"/blobs/"+desc.Digest.String(), nil, nil)
		if resp.StatusCode != 200 || digest.FromBytes(b).String() != desc.Digest.String() {
			t.Fatalf("GET blob %s: %d", desc.Digest, resp.StatusCode)
		}
	}
	return d
}

func TestPushPullTagsDelete(t *testing.T) {
	srv, _ := testServer(t, t.TempDir())
	img, _ := random.Image(4096, 3)
	want, _ := img.Digest()
	if got := pushImage(t, srv.URL, "team/app", "v1", img); got != want.String() {
		t.Fatalf("pushed %s, want %s", got, want)
	}
	pushImage(t, srv.URL, "team/app", "v2", img)
	if got := pullImage(t, srv.URL, "team/app", "v1"); got != want.String() {
		t.Fatalf("pulled %s", got)
	}
	pullImage(t, srv.URL, "team/app", want.String())

	_, b := req(t, "GET", srv.URL+"/v2/team/app/tags/list", nil, nil)
	if string(b) != `{"name":"team/app","tags":["v1","v2"]}` {
		t.Fatalf("tags: %s", b)
	}
	resp, _ := req(t, "DELETE", srv.URL+"/v2/team/app/manifests/"+want.String(), nil, nil)
	if resp.StatusCode != 202 {
		t.Fatalf("DELETE: %d", resp.StatusCode)
	}
	for _, ref := range []string{"v1", "v2", want.String()} {
		resp, b := req(t, "GET", srv.URL+"/v2/team/app/manifests/"+ref, nil, nil)
		if resp.StatusCode != 404 || errCode(b) != codeManifestUnknown {
			t.Fatalf("after delete %s: %d %s", ref, resp.StatusCode, b)
		}
	}
}

func TestPersistsAcrossRestart(t *testing.T) {
	root := t.TempDir()
	srv, _ := testServer(t, root)
	img, _ := random.Image(8192, 2)
	want := pushImage(t, srv.URL, "persist/me", "1.0", img)
	srv.Close()

	srv2, _ := testServer(t, root) // new Registry over a new Store, same root
	if got := pullImage(t, srv2.URL, "persist/me", "1.0"); got != want {
		t.Fatalf("after restart %s, want %s", got, want)
	}
}

func TestTagsPagination(t *testing.T) {
	srv, _ := testServer(t, t.TempDir())
	img, _ := random.Image(64, 1)
	for _, tag := range []string{"e", "a", "c", "b", "d"} {
		pushImage(t, srv.URL, "pages", tag, img)
	}
	tests := []struct{ query, want, link string }{
		{"", `["a","b","c","d","e"]`, ""},
		{"?n=2", `["a","b"]`, `</v2/pages/tags/list?last=b&n=2>; rel="next"`},
		{"?n=2&last=b", `["c","d"]`, `</v2/pages/tags/list?last=d&n=2>; rel="next"`},
		{"?n=2&last=d", `["e"]`, ""},
		{"?last=bb", `["c","d","e"]`, ""},
		{"?n=0", `[]`, ""},
	}
	for _, tc := range tests {
		resp, b := req(t, "GET", srv.URL+"/v2/pages/tags/list"+tc.query, nil, nil)
		var got struct{ Tags json.RawMessage }
		_ = json.Unmarshal(b, &got)
		if resp.StatusCode != 200 || string(got.Tags) != tc.want || resp.Header.Get("Link") != tc.link {
			t.Errorf("%q: %d tags %s link %q, want %s %q", tc.query, resp.StatusCode, got.Tags, resp.Header.Get("Link"), tc.want, tc.link)
		}
	}
}

func TestReferrers(t *testing.T) {
	srv, _ := testServer(t, t.TempDir())
	img, _ := random.Image(64, 1)
	subject := pushImage(t, srv.URL, "ref", "v1", img)
	cfg := pushBlob(t, srv.URL, "ref", []byte("{}"))
	sig := `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","artifactType":"application/vnd.example.sig",` +
		`"config":{"mediaType":"application/vnd.oci.empty.v1+json","digest":"` + cfg + `","size":2},"layers":[],` +
		`"subject":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"` + subject + `","size":1},"annotations":{"k":"v"}}`
	resp, b := req(t, "PUT", srv.URL+"/v2/ref/manifests/"+digestOf([]byte(sig)), map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}, []byte(sig))
	if resp.StatusCode != 201 || resp.Header.Get("OCI-Subject") != subject {
		t.Fatalf("PUT referrer: %d %s %v", resp.StatusCode, b, resp.Header)
	}
	for _, tc := range []struct {
		query string
		n     int
	}{{"", 1}, {"?artifactType=application/vnd.example.sig", 1}, {"?artifactType=other", 0}} {
		resp, b = req(t, "GET", srv.URL+"/v2/ref/referrers/"+subject+tc.query, nil, nil)
		var idx struct {
			Manifests []struct {
				Digest, ArtifactType string
				Annotations          map[string]string
			}
		}
		if err := json.Unmarshal(b, &idx); err != nil || resp.StatusCode != 200 || len(idx.Manifests) != tc.n {
			t.Fatalf("referrers%s: %d %s", tc.query, resp.StatusCode, b)
		}
		if tc.n == 1 && (idx.Manifests[0].Digest != digestOf([]byte(sig)) || idx.Manifests[0].ArtifactType != "application/vnd.example.sig" || idx.Manifests[0].Annotations["k"] != "v") {
			t.Fatalf("referrer: %s", b)
		}
	}
}

func TestAuthorizer(t *testing.T) {
	srv, _ := testServer(t, t.TempDir(), WithAuthorizer(func(r *http.Request, write bool) error {
		if _, _, ok := r.BasicAuth(); write && !ok {
			return io.EOF // any error denies
		}
		return nil
	}))
	resp, b := req(t, "POST", srv.URL+"/v2/locked/blobs/uploads/", nil, nil)
	if resp.StatusCode != 401 || errCode(b) != codeUnauthorized || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic ") {
		t.Fatalf("anonymous write: %d %s %v", resp.StatusCode, b, resp.Header)
	}
	if resp, _ := req(t, "GET", srv.URL+"/v2/", nil, nil); resp.StatusCode != 200 {
		t.Fatalf("anonymous read: %d", resp.StatusCode)
	}
	r, _ := http.NewRequest("POST", srv.URL+"/v2/locked/blobs/uploads/", nil)
	r.SetBasicAuth("u", "p")
	resp2, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != 202 {
		t.Fatalf("authenticated write: %d", resp2.StatusCode)
	}
}
