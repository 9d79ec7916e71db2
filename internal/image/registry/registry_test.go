package registry

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"skiff.dev/skiff/internal/image/content"
)

// testServer serves a registry over a store rooted at root.
func testServer(t testing.TB, root string, opts ...Option) (*httptest.Server, string) {
	t.Helper()
	srv := httptest.NewServer(New(content.New(root), opts...))
	t.Cleanup(srv.Close)
	return srv, strings.TrimPrefix(srv.URL, "http://")
}

func TestBase(t *testing.T) {
	srv, _ := testServer(t, t.TempDir())
	resp, err := http.Get(srv.URL + "/v2/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Docker-Distribution-API-Version") != "registry/2.0" {
		t.Fatalf("GET /v2/: %d %v", resp.StatusCode, resp.Header)
	}
}

// req is a raw request against the test server; it returns the response
// with its body read.
func req(t *testing.T, method, url string, hdr map[string]string, body []byte) (*http.Response, []byte) {
	t.Helper()
	r, err := http.NewRequest(method, url, bytes.NewReader(body))
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
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// errCode returns the first error code of a spec error body.
func errCode(b []byte) string {
	var eb errorBody
	if json.Unmarshal(b, &eb) != nil || len(eb.Errors) == 0 {
		return ""
	}
	return eb.Errors[0].Code
}

func TestResumeUploadAfterRestart(t *testing.T) {
	root := t.TempDir()
	srv, _ := testServer(t, root)
	blob := bytes.Repeat([]byte("resumable "), 1000)
	dg := digestOf(blob)

	resp, _ := req(t, "POST", srv.URL+"/v2/re/sume/blobs/uploads/", nil, nil)
	if resp.StatusCode != 202 {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
	loc := resp.Header.Get("Location")
	half := len(blob) / 2
	resp, _ = req(t, "PATCH", srv.URL+loc, map[string]string{"Content-Range": rng(0, half)}, blob[:half])
	if resp.StatusCode != 202 {
		t.Fatalf("PATCH 1: %d", resp.StatusCode)
	}
	srv.Close()

	srv2, _ := testServer(t, root)
	resp, _ = req(t, "GET", srv2.URL+loc, nil, nil)
	if resp.StatusCode != 204 || resp.Header.Get("Range") != rng(0, half) {
		t.Fatalf("status after restart: %d Range %q", resp.StatusCode, resp.Header.Get("Range"))
	}
	resp, _ = req(t, "PATCH", srv2.URL+loc, map[string]string{"Content-Range": rng(half, len(blob))}, blob[half:])
	if resp.StatusCode != 202 {
		t.Fatalf("PATCH 2: %d", resp.StatusCode)
	}
	resp, b := req(t, "PUT", srv2.URL+loc+"?digest="+dg, nil, nil)
	if resp.StatusCode != 201 {
		t.Fatalf("PUT: %d %s", resp.StatusCode, b)
	}
	resp, b = req(t, "GET", srv2.URL+"/v2/re/sume/blobs/"+dg, nil, nil)
	if resp.StatusCode != 200 || !bytes.Equal(b, blob) {
		t.Fatalf("GET blob: %d, %d bytes", resp.StatusCode, len(b))
	}
}
