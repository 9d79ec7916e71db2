package registry

import (
	"bytes"
	"net/http"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"
)

func TestBadInput(t *testing.T) {
	srv, _ := testServer(t, t.TempDir())
	img, _ := random.Image(64, 1)
	pushImage(t, srv.URL, "ok", "v1", img)
	cfg := pushBlob(t, srv.URL, "ok", []byte("{}"))
	missing := digestOf([]byte("missing"))
	oci := map[string]string{"Content-Type": "application/vnd.oci.image.manifest.v1+json"}
	manifest := func(cfgDigest string) []byte {
		return []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"` + cfgDigest + `","size":2},"layers":[]}`)
	}
	tests := []struct {
		name         string
		method, path string
		hdr          map[string]string
		body         []byte
		status       int
		code         string
	}{
		{"upper-case name", "GET", "/v2/Upper/tags/list", nil, nil, 400, codeNameInvalid},
		{"double separator", "GET", "/v2/a..b/manifests/v1", nil, nil, 400, codeNameInvalid},
		{"trailing slash name", "GET", "/v2/a//b/manifests/v1", nil, nil, 400, codeNameInvalid},
		{"unknown repository tags", "GET", "/v2/nobody/tags/list", nil, nil, 404, codeNameUnknown},
		{"bad pagination", "GET", "/v2/ok/tags/list?n=-1", nil, nil, 400, codePaginationInvalid},
		{"unknown blob", "GET", "/v2/ok/blobs/" + missing, nil, nil, 404, codeBlobUnknown},
		{"blob of another repo", "GET", "/v2/other/blobs/" + cfg, nil, nil, 404, codeBlobUnknown},
		{"malformed digest", "GET", "/v2/ok/blobs/sha256:xyz", nil, nil, 400, codeDigestInvalid},
		{"unknown manifest tag", "GET", "/v2/ok/manifests/nope", nil, nil, 404, codeManifestUnknown},
		{"unknown manifest digest", "HEAD", "/v2/ok/manifests/" + missing, nil, nil, 404, ""},
		{"delete unknown manifest", "DELETE", "/v2/ok/manifests/" + missing, nil, nil, 404, codeManifestUnknown},
		{"delete unknown blob", "DELETE", "/v2/ok/blobs/" + missing, nil, nil, 404, codeBlobUnknown},
		{"unknown upload", "PATCH", "/v2/ok/blobs/uploads/0123456789abcdef0123456789abcdef", nil, []byte("x"), 404, codeBlobUploadUnknown},
		{"malformed upload id", "GET", "/v2/ok/blobs/uploads/../../x", nil, nil, 404, ""},
		{"manifest with missing blob", "PUT", "/v2/ok/manifests/v2", oci, manifest(missing), 400, codeManifestBlobUnknown},
		{"manifest blob in other repo", "PUT", "/v2/other/manifests/v2", oci, manifest(cfg), 400, codeManifestBlobUnknown},
		{"malformed manifest JSON", "PUT", "/v2/ok/manifests/v2", oci, []byte(`{"schemaVersion":2,`), 400, codeManifestInvalid},
		{"manifest without config", "PUT", "/v2/ok/manifests/v2", oci, []byte(`{"schemaVersion":2,"layers":[]}`), 400, codeManifestInvalid},
		{"schema version 1", "PUT", "/v2/ok/manifests/v2", oci, []byte(`{"schemaVersion":1}`), 400, codeManifestInvalid},
		{"media type mismatch", "PUT", "/v2/ok/manifests/v2", map[string]string{"Content-Type": "application/vnd.oci.image.index.v1+json"}, manifest(cfg), 400, codeManifestInvalid},
		{"unsupported media type", "PUT", "/v2/ok/manifests/v2", map[string]string{"Content-Type": "text/plain"}, []byte(`{"schemaVersion":2}`), 415, codeUnsupported},
		{"manifest digest mismatch", "PUT", "/v2/ok/manifests/" + missing, oci, manifest(cfg), 400, codeDigestInvalid},
		{"bad tag", "PUT", "/v2/ok/manifests/-bad", oci, manifest(cfg), 400, codeManifestInvalid},
		{"oversized manifest", "PUT", "/v2/ok/manifests/big", oci, bytes.Repeat([]byte(" "), MaxManifestSize+1), 413, codeManifestInvalid},
		{"method not allowed", "POST", "/v2/ok/manifests/v1", nil, nil, 405, codeUnsupported},
		{"not the API", "GET", "/v1/ok", nil, nil, 404, codeUnsupported},
		{"unknown endpoint", "GET", "/v2/ok/whatever", nil, nil, 404, codeUnsupported},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, b := req(t, tc.method, srv.URL+tc.path, tc.hdr, tc.body)
			if resp.StatusCode != tc.status || (tc.code != "" && errCode(b) != tc.code) {
				t.Fatalf("got %d %q, want %d %q: %s", resp.StatusCode, errCode(b), tc.status, tc.code, b)
			}
			if resp.StatusCode >= 400 && tc.method != http.MethodHead && resp.Header.Get("Content-Type") != "application/json" {
				t.Fatalf("error Content-Type %q", resp.Header.Get("Content-Type"))
			}
		})
	}
	// A valid manifest still goes through after all that.
	if resp, b := req(t, "PUT", srv.URL+"/v2/ok/manifests/v2", oci, manifest(cfg)); resp.StatusCode != 201 {
		t.Fatalf("valid manifest: %d %s", resp.StatusCode, b)
	}
}
