package registry

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"

	"github.com/opencontainers/go-digest"
)

func digestOf(b []byte) string { return digest.FromBytes(b).String() }

// rng is the Content-Range / Range value for bytes [from, to).
func rng(from, to int) string { return fmt.Sprintf("%d-%d", from, to-1) }

func TestUploadSequences(t *testing.T) {
	blob := bytes.Repeat([]byte("0123456789"), 10) // 100 bytes
	good := digestOf(blob)
	bad := digestOf([]byte("something else"))

	type step struct {
		method     string
		query      string // appended to the upload location
		contentRng string
		body       []byte
		wantStatus int
		wantCode   string
		wantRange  string
	}
	tests := []struct {
		name    string
		steps   []step
		visible bool // the blob can be read afterwards
	}{
		{"chunks in order", []step{
			{method: "PATCH", contentRng: rng(0, 40), body: blob[:40], wantStatus: 202, wantRange: "0-39"},
			{method: "PATCH", contentRng: rng(40, 100), body: blob[40:], wantStatus: 202, wantRange: "0-99"},
			{method: "GET", wantStatus: 204, wantRange: "0-99"},
			{method: "PUT", query: "?digest=" + good, wantStatus: 201},
		}, true},
		{"last chunk in PUT", []step{
			{method: "PATCH", contentRng: rng(0, 30), body: blob[:30], wantStatus: 202},
			{method: "PUT", query: "?digest=" + good, contentRng: rng(30, 100), body: blob[30:], wantStatus: 201},
		}, true},
		{"streamed PATCH without Content-Range", []step{
			{method: "PATCH", body: blob[:50], wantStatus: 202, wantRange: "0-49"},
			{method: "PATCH", body: blob[50:], wantStatus: 202, wantRange: "0-99"},
			{method: "PUT", query: "?digest=" + good, wantStatus: 201},
		}, true},
		{"monolithic PUT", []step{
			{method: "PUT", query: "?digest=" + good, body: blob, wantStatus: 201},
		}, true},
		{"out-of-order chunk", []step{
			{method: "PATCH", contentRng: rng(0, 40), body: blob[:40], wantStatus: 202},
			{method: "PATCH", contentRng: rng(50, 100), body: blob[50:], wantStatus: 416, wantCode: codeBlobUploadInvalid, wantRange: "0-39"},
			{method: "PATCH", contentRng: rng(0, 40), body: blob[:40], wantStatus: 416, wantCode: codeBlobUploadInvalid},
			{method: "GET", wantStatus: 204, wantRange: "0-39"},
			{method: "PATCH", contentRng: rng(40, 100), body: blob[40:], wantStatus: 202},
			{method: "PUT", query: "?digest=" + good, wantStatus: 201},
		}, true},
		{"chunk shorter than its range", []step{
			{method: "PATCH", contentRng: rng(0, 50), body: blob[:40], wantStatus: 400, wantCode: codeSizeInvalid},
			{method: "GET", wantStatus: 204, wantRange: "0-0"},
		}, false},
		{"wrong final digest leaves nothing", []step{
			{method: "PATCH", contentRng: rng(0, 100), body: blob, wantStatus: 202},
			{method: "PUT", query: "?digest=" + bad, wantStatus: 400, wantCode: codeDigestInvalid},
			{method: "GET", wantStatus: 404, wantCode: codeBlobUploadUnknown},
			{method: "PATCH", contentRng: rng(0, 100), body: blob, wantStatus: 404, wantCode: codeBlobUploadUnknown},
		}, false},
		{"PUT without digest", []step{
			{method: "PUT", wantStatus: 400, wantCode: codeDigestInvalid},
		}, false},
		{"cancel", []step{
			{method: "PATCH", body: blob, wantStatus: 202},
			{method: "DELETE", wantStatus: 204},
			{method: "GET", wantStatus: 404, wantCode: codeBlobUploadUnknown},
			{method: "DELETE", wantStatus: 404, wantCode: codeBlobUploadUnknown},
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, _ := testServer(t, t.TempDir())
			resp, _ := req(t, "POST", srv.URL+"/v2/up/load/blobs/uploads/", nil, nil)
			if resp.StatusCode != http.StatusAccepted || resp.Header.Get("Docker-Upload-UUID") == "" {
				t.Fatalf("POST: %d %v", resp.StatusCode, resp.Header)
			}
			loc := resp.Header.Get("Location")
			for i, s := range tc.steps {
				hdr := map[string]string{}
				if s.contentRng != "" {
					hdr["Content-Range"] = s.contentRng
				}
				if s.body != nil {
					hdr["Content-Type"] = "application/octet-stream"
				}
				resp, b := req(t, s.method, srv.URL+loc+s.query, hdr, s.body)
				if resp.StatusCode != s.wantStatus || errCode(b) != s.wantCode {
					t.Fatalf("step %d %s: got %d %q, want %d %q (%s)", i, s.method, resp.StatusCode, errCode(b), s.wantStatus, s.wantCode, b)
				}
				if s.wantRange != "" && resp.Header.Get("Range") != s.wantRange {
					t.Fatalf("step %d %s: Range %q, want %q", i, s.method, resp.Header.Get("Range"), s.wantRange)
				}
			}
			resp, b := req(t, "GET", srv.URL+"/v2/up/load/blobs/"+good, nil, nil)
			if tc.visible != (resp.StatusCode == 200) || (tc.visible && !bytes.Equal(b, blob)) {
				t.Fatalf("blob after sequence: %d (%d bytes), want visible=%v", resp.StatusCode, len(b), tc.visible)
			}
			if !tc.visible && errCode(b) != codeBlobUnknown {
				t.Fatalf("invisible blob: code %q", errCode(b))
			}
		})
	}
}

func TestMonolithicPostAndRange(t *testing.T) {
	srv, _ := testServer(t, t.TempDir())
	blob := []byte("hello, monolithic world")
	resp, b := req(t, "POST", srv.URL+"/v2/mono/blobs/uploads/?digest="+digestOf([]byte("nope")), nil, blob)
	if resp.StatusCode != 400 || errCode(b) != codeDigestInvalid {
		t.Fatalf("bad monolithic POST: %d %s", resp.StatusCode, b)
	}
	resp, _ = req(t, "POST", srv.URL+"/v2/mono/blobs/uploads/?digest="+digestOf(blob), nil, blob)
	if resp.StatusCode != 201 || resp.Header.Get("Docker-Content-Digest") != digestOf(blob) {
		t.Fatalf("monolithic POST: %d", resp.StatusCode)
	}
	resp, b = req(t, "GET", srv.URL+"/v2/mono/blobs/"+digestOf(blob), map[string]string{"Range": "bytes=7-16"}, nil)
	if resp.StatusCode != 206 || string(b) != "monolithi"+"c" {
		t.Fatalf("range GET: %d %q", resp.StatusCode, b)
	}
	resp, _ = req(t, "HEAD", srv.URL+"/v2/mono/blobs/"+digestOf(blob), nil, nil)
	if resp.StatusCode != 200 || resp.ContentLength != int64(len(blob)) {
		t.Fatalf("HEAD: %d len %d", resp.StatusCode, resp.ContentLength)
	}
	// Mount into another repository, then delete the original link.
	resp, _ = req(t, "POST", srv.URL+"/v2/mounted/blobs/uploads/?mount="+digestOf(blob)+"&from=mono", nil, nil)
	if resp.StatusCode != 201 {
		t.Fatalf("mount: %d", resp.StatusCode)
	}
	resp, _ = req(t, "DELETE", srv.URL+"/v2/mono/blobs/"+digestOf(blob), nil, nil)
	if resp.StatusCode != 202 {
		t.Fatalf("DELETE blob: %d", resp.StatusCode)
	}
	resp, b = req(t, "GET", srv.URL+"/v2/mono/blobs/"+digestOf(blob), nil, nil)
	if resp.StatusCode != 404 || errCode(b) != codeBlobUnknown {
		t.Fatalf("deleted blob: %d %s", resp.StatusCode, b)
	}
	resp, _ = req(t, "GET", srv.URL+"/v2/mounted/blobs/"+digestOf(blob), nil, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("mounted blob: %d", resp.StatusCode)
	}
	// Mount from a repository without the blob starts an upload instead.
	resp, _ = req(t, "POST", srv.URL+"/v2/third/blobs/uploads/?mount="+digestOf(blob)+"&from=mono", nil, nil)
	if resp.StatusCode != 202 {
		t.Fatalf("failed mount: %d", resp.StatusCode)
	}
}
