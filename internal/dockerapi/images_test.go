package dockerapi_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/jsonstream"
	"github.com/moby/moby/client"

	"skiff.dev/skiff/internal/dockerapi"
	"skiff.dev/skiff/internal/dockerapi/dockerapitest"
	"skiff.dev/skiff/internal/errdefs"
)

// messages reads a JSON message stream to its end.
func messages(t *testing.T, r io.Reader) []jsonstream.Message {
	t.Helper()
	dec := newJSONDecoder(r)
	var ms []jsonstream.Message
	for dec.More() {
		var m jsonstream.Message
		if err := dec.Decode(&m); err != nil {
			t.Fatalf("decoding the stream: %v", err)
		}
		ms = append(ms, m)
	}
	return ms
}

func TestImagePull(t *testing.T) {
	ts := startServer(t, nil)
	ctx := testContext(t)
	ts.Backend.Remote["alpine:3"] = &container.Config{Cmd: []string{"sh"}}

	t.Run("progress", func(t *testing.T) {
		resp, err := ts.Client.ImagePull(ctx, "alpine:3", client.ImagePullOptions{})
		if err != nil {
			t.Fatal(err)
		}
		ms := messages(t, resp)
		if len(ms) == 0 || ms[0].Status != "3: Pulling from alpine" || ms[len(ms)-1].Status != "Status: Downloaded newer image for alpine:3" {
			t.Errorf("messages %+v", ms)
		}
		if _, err := ts.Client.ImageInspect(ctx, "alpine:3"); err != nil {
			t.Errorf("pulled image: %v", err)
		}
	})
	t.Run("not found before any progress is a 404", func(t *testing.T) {
		_, err := ts.Client.ImagePull(ctx, "nothere", client.ImagePullOptions{})
		if !cerrdefs.IsNotFound(err) || !strings.Contains(err.Error(), "pull access denied for nothere") {
			t.Errorf("pull of a missing image: %v", err)
		}
	})
	t.Run("error in the middle", func(t *testing.T) {
		ts.Backend.PullFunc = func(_ context.Context, ref string, progress io.Writer) error {
			fmt.Fprintf(progress, "Pulling %s\nlayer 1 of 2 done\n", ref)
			return fmt.Errorf("layer 2: %w", errdefs.ErrUnavailable)
		}
		defer func() { ts.Backend.PullFunc = nil }()
		resp, err := ts.Client.ImagePull(ctx, "example.com/app:v1", client.ImagePullOptions{})
		if err != nil {
			t.Fatalf("the stream started, so the error belongs in it: %v", err)
		}
		var status []string
		var streamErr error
		for m, err := range resp.JSONMessages(ctx) {
			if err != nil {
				t.Fatal(err)
			}
			if m.Error != nil {
				streamErr = m.Error
				continue
			}
			status = append(status, m.Status)
		}
		if strings.Join(status, "|") != "Pulling example.com/app:v1|layer 1 of 2 done" {
			t.Errorf("status lines %q", status)
		}
		if streamErr == nil || streamErr.Error() != "layer 2: unavailable" {
			t.Errorf("stream error %v", streamErr)
		}
	})
	t.Run("legacy error field", func(t *testing.T) {
		ts.Backend.PullFunc = func(_ context.Context, _ string, progress io.Writer) error {
			fmt.Fprint(progress, "partial line without newline")
			return errors.New("boom")
		}
		defer func() { ts.Backend.PullFunc = nil }()
		_, body := ts.do(t, "POST", "/images/create?fromImage=x&tag=1", nil)
		want := `{"status":"partial line without newline"}` + "\n" + `{"errorDetail":{"message":"boom"},"error":"boom"}` + "\n"
		if body != want {
			t.Errorf("body %q, want %q", body, want)
		}
	})
	t.Run("import is not implemented", func(t *testing.T) {
		resp, _ := ts.do(t, "POST", "/images/create?fromSrc=-", strings.NewReader("x"))
		if resp.StatusCode != 501 {
			t.Errorf("status %d", resp.StatusCode)
		}
	})
}

// tarOf builds a tar of name → content.
func tarOf(t *testing.T, files map[string]string) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body))}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write([]byte(body))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf
}

func TestBuild(t *testing.T) {
	ts := startServer(t, nil)
	ctx := testContext(t)
	dockerfile := "FROM busybox\nARG V\nLABEL built=yes\nCOPY app.txt /\nCMD [\"echo\", \"built\"]\n"
	buildCtx := map[string]string{"Dockerfile": dockerfile, "app.txt": "hi\n", "other.Dockerfile": "FROM busybox\nRUN false\n"}

	t.Run("aux ID and tags", func(t *testing.T) {
		v := "1"
		res, err := ts.Client.ImageBuild(ctx, tarOf(t, buildCtx), client.ImageBuildOptions{
			Tags: []string{"app:1", "app:latest"}, Remove: true, BuildArgs: map[string]*string{"V": &v, "UNSET": nil},
			Labels: map[string]string{"by": "test"},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var id string
		var out strings.Builder
		for _, m := range messages(t, res.Body) {
			if m.Aux != nil {
				var aux struct{ ID string }
				if err := jsonDecode(bytes.NewReader(*m.Aux), &aux); err != nil {
					t.Fatal(err)
				}
				id = aux.ID
			}
			if m.Error != nil {
				t.Fatal(m.Error)
			}
			out.WriteString(m.Stream)
		}
		if !strings.HasPrefix(id, "sha256:") {
			t.Fatalf("aux ID %q", id)
		}
		for _, want := range []string{"Step 1/5 : FROM busybox\n", "Successfully built " + id[7:19] + "\n", "Successfully tagged app:latest\n"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("output lacks %q:\n%s", want, out.String())
			}
		}
		img, err := ts.Client.ImageInspect(ctx, "app:1")
		if err != nil {
			t.Fatal(err)
		}
		if img.ID != id || img.Config.Labels["built"] != "yes" || img.Config.Labels["by"] != "test" {
			t.Errorf("built image %+v", img.Config)
		}
	})
	t.Run("quiet prints the ID", func(t *testing.T) {
		res, err := ts.Client.ImageBuild(ctx, tarOf(t, buildCtx), client.ImageBuildOptions{SuppressOutput: true, Remove: true})
		if err != nil {
			t.Fatal(err)
		}
		var streams []string
		for _, m := range messages(t, res.Body) {
			if m.Stream != "" {
				streams = append(streams, m.Stream)
			}
		}
		if len(streams) != 1 || !strings.HasPrefix(streams[0], "sha256:") {
			t.Errorf("quiet output %q, want just the ID", streams)
		}
	})
	t.Run("failing step reports in the stream", func(t *testing.T) {
		res, err := ts.Client.ImageBuild(ctx, tarOf(t, buildCtx), client.ImageBuildOptions{Dockerfile: "other.Dockerfile"})
		if err != nil {
			t.Fatal(err)
		}
		ms := messages(t, res.Body)
		last := ms[len(ms)-1]
		if last.Error == nil || !strings.Contains(last.Error.Message, "returned a non-zero code: 1") {
			t.Errorf("last message %+v", last)
		}
	})
	t.Run("missing Dockerfile is a 400", func(t *testing.T) {
		_, err := ts.Client.ImageBuild(ctx, tarOf(t, map[string]string{"x": "y"}), client.ImageBuildOptions{})
		if !cerrdefs.IsInvalidArgument(err) || !strings.Contains(err.Error(), "Cannot locate specified Dockerfile") {
			t.Errorf("error %v", err)
		}
	})
	t.Run("gzip context", func(t *testing.T) {
		var gz bytes.Buffer
		zw := gzipWriter(&gz)
		_, _ = io.Copy(zw, tarOf(t, buildCtx))
		_ = zw.Close()
		resp, body := ts.do(t, "POST", "/build?t=gz:1", &gz, "Content-Type", "application/x-tar")
		if resp.StatusCode != 200 || !strings.Contains(body, `"aux":{"ID":"sha256:`) {
			t.Errorf("got %d %s", resp.StatusCode, body)
		}
	})
	t.Run("bad parameters", func(t *testing.T) {
		for q, want := range map[string]int{
			"buildargs=nope":  400,
			"labels=[1]":      400,
			"version=2":       501,
			"remote=git://x":  501,
			"platform=plan9":  400,
			"version=3":       400,
			"platform=linux/": 400,
		} {
			resp, body := ts.do(t, "POST", "/build?"+q, tarOf(t, buildCtx))
			if resp.StatusCode != want {
				t.Errorf("%s: %d %s, want %d", q, resp.StatusCode, body, want)
			}
		}
	})
}

func TestImages(t *testing.T) {
	ts := startServer(t, nil)
	ctx := testContext(t)
	const ref = "localhost:5000/team/app:v1" // slashes and a port in the path

	if _, err := ts.Client.ImageTag(ctx, client.ImageTagOptions{Source: "busybox", Target: ref}); err != nil {
		t.Fatal(err)
	}
	img, err := ts.Client.ImageInspect(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(img.RepoTags, ",") != "busybox:latest,"+ref {
		t.Errorf("tags %v", img.RepoTags)
	}
	list, err := ts.Client.ImageList(ctx, client.ImageListOptions{Filters: make(client.Filters).Add("reference", "localhost:5000/team/*")})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.Items) != 1 || list.Items[0].ID != img.ID {
		t.Errorf("filtered list %+v", list.Items)
	}
	hist, err := ts.Client.ImageHistory(ctx, ref)
	if err != nil || len(hist.Items) != 1 {
		t.Errorf("history %+v, %v", hist, err)
	}

	push, err := ts.Client.ImagePush(ctx, ref, client.ImagePushOptions{RegistryAuth: "e30="})
	if err != nil {
		t.Fatal(err)
	}
	if err := push.Wait(ctx); err != nil {
		t.Errorf("push: %v", err)
	}

	save, err := ts.Client.ImageSave(ctx, []string{ref})
	if err != nil {
		t.Fatal(err)
	}
	archive, err := io.ReadAll(save)
	if err != nil {
		t.Fatal(err)
	}
	rm, err := ts.Client.ImageRemove(ctx, ref, client.ImageRemoveOptions{})
	if err != nil || len(rm.Items) != 1 || rm.Items[0].Untagged != ref {
		t.Errorf("remove of one of two tags: %+v, %v", rm.Items, err)
	}
	load, err := ts.Client.ImageLoad(ctx, bytes.NewReader(archive), client.ImageLoadWithQuiet(true))
	if err != nil {
		t.Fatal(err)
	}
	ms := messages(t, load)
	if len(ms) != 1 || ms[0].Stream != "Loaded image: "+ref+"\n" {
		t.Errorf("load output %+v", ms)
	}
	if _, err := ts.Client.ImageInspect(ctx, ref); err != nil {
		t.Errorf("loaded image: %v", err)
	}

	_, err = ts.Client.ImageInspect(ctx, "nope:1")
	if !cerrdefs.IsNotFound(err) {
		t.Errorf("inspect of a missing image: %v", err)
	}
	id := ts.create(t, &container.Config{Image: ref, Cmd: []string{"true"}}, nil)
	_, err = ts.Client.ImageRemove(ctx, ref, client.ImageRemoveOptions{})
	if !cerrdefs.IsConflict(err) {
		t.Errorf("remove of an image in use: %v, want a conflict", err)
	}
	_, _ = ts.Client.ContainerRemove(ctx, id, client.ContainerRemoveOptions{})
	rm, err = ts.Client.ImageRemove(ctx, ref, client.ImageRemoveOptions{Force: true})
	if err != nil || rm.Items[len(rm.Items)-1].Deleted == "" {
		t.Errorf("forced remove %+v, %v", rm.Items, err)
	}

	for _, tc := range []struct{ method, path string }{
		{"POST", "/images/busybox/tag"},
		{"GET", "/images/get"},
		{"POST", "/images/busybox/tag?tag=only"},
	} {
		resp, _ := ts.do(t, tc.method, tc.path, nil)
		if resp.StatusCode != 400 {
			t.Errorf("%s %s: %d, want 400", tc.method, tc.path, resp.StatusCode)
		}
	}
	prune, err := ts.Client.ImagePrune(ctx, client.ImagePruneOptions{})
	if err != nil {
		t.Fatal(err)
	}
	_ = prune
}

// pullRecorder records what reaches the backend's pull.
type pullRecorder struct {
	*dockerapitest.Backend
	ref, platform string
	auth          dockerapi.RegistryAuth
}

func (p *pullRecorder) ImagePull(_ context.Context, ref, platform string, auth dockerapi.RegistryAuth, progress io.Writer) error {
	p.ref, p.platform, p.auth = ref, platform, auth
	_, err := fmt.Fprintln(progress, "pulled")
	return err
}

func TestPullParameters(t *testing.T) {
	rec := &pullRecorder{Backend: dockerapitest.New()}
	ts := startServer(t, rec)
	basic := base64.URLEncoding.EncodeToString([]byte(`{"auth":"` + base64.StdEncoding.EncodeToString([]byte("bob:secret")) + `","serveraddress":"r.example"}`))
	plain := base64.URLEncoding.EncodeToString([]byte(`{"username":"al","password":"pw","identitytoken":"tok"}`))
	digest := "sha256:" + strings.Repeat("a", 64)
	tests := []struct {
		name, query, auth string
		wantRef, wantPlat string
		wantAuth          dockerapi.RegistryAuth
	}{
		{"tag", "fromImage=busybox&tag=1.36", "", "busybox:1.36", "", dockerapi.RegistryAuth{}},
		{"no tag", "fromImage=example.com:5000/a/b", "", "example.com:5000/a/b", "", dockerapi.RegistryAuth{}},
		{"digest", "fromImage=busybox&tag=" + digest, "", "busybox@" + digest, "", dockerapi.RegistryAuth{}},
		{"trailing colon of pull -a", "fromImage=busybox:", "", "busybox", "", dockerapi.RegistryAuth{}},
		{"platform", "fromImage=busybox&platform=linux/arm64/v8", "", "busybox", "linux/arm64/v8", dockerapi.RegistryAuth{}},
		{"auth field", "fromImage=busybox", basic, "busybox", "", dockerapi.RegistryAuth{Username: "bob", Password: "secret", ServerAddress: "r.example"}},
		{"username and token", "fromImage=busybox", plain, "busybox", "", dockerapi.RegistryAuth{Username: "al", Password: "pw", IdentityToken: "tok"}},
		{"garbage auth is no auth", "fromImage=busybox", "%%%", "busybox", "", dockerapi.RegistryAuth{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var hdr []string
			if tt.auth != "" {
				hdr = []string{"X-Registry-Auth", tt.auth}
			}
			resp, body := ts.do(t, "POST", "/images/create?"+tt.query, nil, hdr...)
			if resp.StatusCode != 200 || body != `{"status":"pulled"}`+"\n" {
				t.Fatalf("got %d %s", resp.StatusCode, body)
			}
			if rec.ref != tt.wantRef || rec.platform != tt.wantPlat || rec.auth != tt.wantAuth {
				t.Errorf("backend got %q %q %+v; want %q %q %+v", rec.ref, rec.platform, rec.auth, tt.wantRef, tt.wantPlat, tt.wantAuth)
			}
		})
	}
}
