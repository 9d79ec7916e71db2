package build

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"skiff.dev/skiff/internal/image/content"
)

var epoch = time.Unix(1700000000, 0).UTC()

type tfile struct {
	name, body string
	mode       int64
	dir        bool
	uid        int
}

func tarBytes(t testing.TB, files []tfile, gz bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.Writer = &buf
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(&buf)
		w = zw
	}
	tw := tar.NewWriter(w)
	for _, f := range files {
		h := &tar.Header{Name: f.name, Mode: f.mode, Uid: f.uid, Gid: f.uid, ModTime: epoch, Typeflag: tar.TypeReg, Size: int64(len(f.body))}
		if f.dir {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, f.body)
	}
	tw.Close()
	if zw != nil {
		zw.Close()
	}
	return buf.Bytes()
}

// putBase writes a one-layer image named ref into the store.
func putBase(t testing.TB, s *content.Store, ref string, cfg dockerspec.DockerOCIImageConfig, files []tfile) {
	t.Helper()
	ctx := context.Background()
	raw := tarBytes(t, files, false)
	gz := tarBytes(t, files, true)
	ldesc, err := s.WriteBlob(ctx, bytes.NewReader(gz), int64(len(gz)), digest.FromBytes(gz))
	if err != nil {
		t.Fatal(err)
	}
	img := dockerspec.DockerOCIImage{Config: cfg}
	img.OS, img.Architecture = "linux", "amd64"
	img.RootFS = ocispec.RootFS{Type: "layers", DiffIDs: []digest.Digest{digest.FromBytes(raw)}}
	cb, _ := json.Marshal(img)
	cdesc, err := s.WriteBlob(ctx, bytes.NewReader(cb), int64(len(cb)), digest.FromBytes(cb))
	if err != nil {
		t.Fatal(err)
	}
	man := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: cdesc.Digest, Size: cdesc.Size},
		Layers: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: ldesc.Digest, Size: ldesc.Size}}}
	mb, _ := json.Marshal(man)
	mdesc, err := s.WriteBlob(ctx, bytes.NewReader(mb), int64(len(mb)), digest.FromBytes(mb))
	if err != nil {
		t.Fatal(err)
	}
	name, _ := NormalizeName(ref)
	mdesc.MediaType = ocispec.MediaTypeImageManifest
	if err := s.SetRef(ctx, name, mdesc); err != nil {
		t.Fatal(err)
	}
}

var baseFiles = []tfile{
	{name: "etc/", dir: true, mode: 0o755},
	{name: "etc/passwd", body: "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\n"},
	{name: "etc/group", body: "root:x:0:\napp:x:1001:\nstaff:x:50:\n"},
	{name: "srv/", dir: true, mode: 0o755},
	{name: "bin/", dir: true, mode: 0o755},
	{name: "bin/tool", body: "#!tool\n", mode: 0o755},
}

func newEnv(t testing.TB, files map[string]string) (*content.Store, string) {
	t.Helper()
	s := content.New(filepath.Join(t.TempDir(), "store"))
	if err := s.Init(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	writeFiles(t, dir, files)
	putBase(t, s, "skiff.local/base", dockerspec.DockerOCIImageConfig{ImageConfig: ocispec.ImageConfig{
		Env: []string{"PATH=/usr/bin:/bin", "BASE=1"}, Cmd: []string{"base-cmd"}, WorkingDir: "/"}}, baseFiles)
	return s, dir
}

func writeFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, body := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, epoch.Add(time.Hour), epoch.Add(time.Hour))
	}
}

type builtImage struct {
	id     digest.Digest
	img    dockerspec.DockerOCIImage
	layers []map[string]*tar.Header // per layer: name → header
	bodies map[string]string        // last layer's file bodies
	out    string
}

func build(t testing.TB, s *content.Store, dir, df string, opts Options) (*builtImage, error) {
	t.Helper()
	var out bytes.Buffer
	opts.ContextDir = dir
	opts.DockerfileBytes = []byte(df)
	opts.Progress = &out
	if opts.SourceDateEpoch == nil {
		opts.SourceDateEpoch = &epoch
	}
	if opts.Platform == "" {
		opts.Platform = "linux/amd64"
	}
	id, err := New(s, nil).Build(context.Background(), opts)
	if err != nil {
		return &builtImage{out: out.String()}, err
	}
	ctx := context.Background()
	cb, err := s.ReadBlob(ctx, id, 0)
	if err != nil {
		t.Fatal(err)
	}
	bi := &builtImage{id: id, out: out.String(), bodies: map[string]string{}}
	if err := json.Unmarshal(cb, &bi.img); err != nil {
		t.Fatal(err)
	}
	return bi, nil
}

// readLayers reads the layers of the image tagged ref.
func readLayers(t testing.TB, s *content.Store, ref string) ([]map[string]*tar.Header, map[string]string) {
	t.Helper()
	ctx := context.Background()
	name, _ := NormalizeName(ref)
	desc, err := s.Ref(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	mb, _ := s.ReadBlob(ctx, desc.Digest, 0)
	var man ocispec.Manifest
	json.Unmarshal(mb, &man)
	var out []map[string]*tar.Header
	bodies := map[string]string{}
	b := New(s, nil)
	for _, l := range man.Layers {
		r, done, err := b.openLayer(ctx, l)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]*tar.Header{}
		tr := tar.NewReader(r)
		for {
			h, err := tr.Next()
			if err != nil {
				break
			}
			body, _ := io.ReadAll(tr)
			bodies[strings.TrimSuffix(h.Name, "/")] = string(body)
			m[strings.TrimSuffix(h.Name, "/")] = h
		}
		done()
		out = append(out, m)
	}
	return out, bodies
}

func TestBuildConfig(t *testing.T) {
	ctxFiles := map[string]string{"app.txt": "hello\n", "data/a": "A", "data/b": "B", "x.log": "log"}
	tests := []struct {
		name       string
		dockerfile string
		args       map[string]string
		target     string
		want       string // expected config JSON (docker inspect .Config shape)
		author     string
		layers     int
		history    []string
	}{{
		name:       "scratch copy",
		dockerfile: "FROM scratch\nCOPY app.txt /\n",
		want:       `{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"WorkingDir":"/"}`,
		layers:     1,
		history:    []string{"COPY app.txt / # buildkit"},
	}, {
		name: "every metadata instruction",
		dockerfile: `FROM skiff.local/base
MAINTAINER Jane <jane@example.com>
ENV A=1 B="two words"
ENV A=3
LABEL org.example.v=1 "with space"="yes"
WORKDIR /srv
WORKDIR app
USER app:app
EXPOSE 80 53/udp 8000-8001
VOLUME ["/data", "/logs"]
VOLUME /cache
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENTRYPOINT exec server
CMD ["--port", "$A"]
HEALTHCHECK --interval=5s --timeout=2s --retries=4 CMD curl -f http://localhost/
STOPSIGNAL SIGQUIT
ONBUILD COPY . /src
`,
		author: "Jane <jane@example.com>",
		want: `{"User":"app:app","ExposedPorts":{"53/udp":{},"80/tcp":{},"8000/tcp":{},"8001/tcp":{}},
"Env":["PATH=/usr/bin:/bin","BASE=1","A=3","B=two words"],
"Entrypoint":["/bin/bash","-o","pipefail","-c","exec server"],"Cmd":["--port","$A"],
"Volumes":{"/cache":{},"/data":{},"/logs":{}},"WorkingDir":"/srv/app",
"Labels":{"org.example.v":"1","with space":"yes"},"StopSignal":"SIGQUIT",
"Healthcheck":{"Test":["CMD-SHELL","curl -f http://localhost/"],"Interval":5000000000,"Timeout":2000000000,"Retries":4},
"OnBuild":["COPY . /src"],"Shell":["/bin/bash","-o","pipefail","-c"]}`,
		layers: 2, // base + WORKDIR /srv/app (srv exists: no layer)
	}, {
		name:       "entrypoint resets inherited cmd",
		dockerfile: "FROM skiff.local/base\nENTRYPOINT [\"/bin/tool\"]\n",
		want:       `{"Env":["PATH=/usr/bin:/bin","BASE=1"],"Entrypoint":["/bin/tool"],"WorkingDir":"/"}`,
		layers:     1,
	}, {
		name:       "arg before from and in stage",
		dockerfile: "ARG BASE=skiff.local/base\nARG VER=1\nFROM $BASE\nARG VER\nARG OTHER=x\nENV V=$VER O=$OTHER\nLABEL v=${VER}\n",
		args:       map[string]string{"VER": "9"},
		want:       `{"Env":["PATH=/usr/bin:/bin","BASE=1","V=9","O=x"],"Cmd":["base-cmd"],"WorkingDir":"/","Labels":{"v":"9"}}`,
		layers:     1,
	}, {
		name:       "multi-stage copy from and target",
		dockerfile: "FROM skiff.local/base AS build\nCOPY data /out/\nFROM scratch AS final\nCOPY --from=build /out/a /a\nCOPY --from=build --chown=7:8 --chmod=700 /bin/tool /t\nFROM scratch AS unused\nCOPY nothing-here /\n",
		target:     "final",
		want:       `{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],"WorkingDir":"/"}`,
		layers:     2,
	}}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, dir := newEnv(t, ctxFiles)
			bi, err := build(t, s, dir, tc.dockerfile, Options{BuildArgs: tc.args, Target: tc.target, Tags: []string{"out"}})
			if err != nil {
				t.Fatalf("build: %v\n%s", err, bi.out)
			}
			var want, got any
			if err := json.Unmarshal([]byte(tc.want), &want); err != nil {
				t.Fatal(err)
			}
			gb, _ := json.Marshal(bi.img.Config)
			json.Unmarshal(gb, &got)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("config:\n got %s\nwant %s", gb, tc.want)
			}
			if bi.img.Author != tc.author {
				t.Errorf("author %q, want %q", bi.img.Author, tc.author)
			}
			if n := len(bi.img.RootFS.DiffIDs); n != tc.layers {
				t.Errorf("%d layers, want %d", n, tc.layers)
			}
			if tc.history != nil {
				var h []string
				for _, e := range bi.img.History {
					h = append(h, e.CreatedBy)
				}
				if !reflect.DeepEqual(h, tc.history) {
					t.Errorf("history %q, want %q", h, tc.history)
				}
			}
			if !bi.img.Created.Equal(epoch) {
				t.Errorf("created %v, want %v", bi.img.Created, epoch)
			}
			if !strings.Contains(bi.out, "Successfully tagged docker.io/library/out:latest") {
				t.Errorf("output lacks tag line:\n%s", bi.out)
			}
		})
	}
}

func TestCopyLayers(t *testing.T) {
	s, dir := newEnv(t, map[string]string{"app.txt": "hello\n", "sub/x": "X", "sub/y": "Y", ".dockerignore": "*.log\nsub/y\n", "a.log": "L"})
	// A local tar for ADD.
	os.WriteFile(filepath.Join(dir, "files.tar.gz"), tarBytes(t, []tfile{{name: "t1", body: "one", uid: 5}, {name: "d/", dir: true, mode: 0o755}, {name: "d/t2", body: "two"}}, true), 0o644)
	df := "FROM skiff.local/base\nCOPY app.txt /srv\nCOPY --chown=app:staff sub /dst/\nCOPY *.txt *.log /globbed/\nADD files.tar.gz /x/\nWORKDIR /new/dir\n"
	bi, err := build(t, s, dir, df, Options{Tags: []string{"skiff.local/t"}})
	if err != nil {
		t.Fatalf("%v\n%s", err, bi.out)
	}
	layers, bodies := readLayers(t, s, "skiff.local/t")
	if len(layers) != 6 {
		t.Fatalf("%d layers, want 6", len(layers))
	}
	// COPY app.txt /srv: /srv is a directory in the base.
	if h := layers[1]["srv/app.txt"]; h == nil || h.Uid != 0 || bodies["srv/app.txt"] != "hello\n" {
		t.Errorf("COPY into existing dir: %v", layers[1])
	}
	if h := layers[2]["dst/x"]; h == nil || h.Uid != 1000 || h.Gid != 50 {
		t.Errorf("--chown=app:staff: %+v", h)
	}
	if layers[2]["dst/y"] != nil {
		t.Error(".dockerignore'd sub/y was copied")
	}
	if layers[3]["globbed/app.txt"] == nil || layers[3]["globbed/a.log"] != nil {
		t.Errorf("glob + .dockerignore: %v", keys(layers[3]))
	}
	if h := layers[4]["x/t1"]; h == nil || h.Uid != 5 || bodies["x/d/t2"] != "two" {
		t.Errorf("ADD tar not extracted: %v", keys(layers[4]))
	}
	if h := layers[5]["new/dir"]; h == nil || h.Typeflag != tar.TypeDir {
		t.Errorf("WORKDIR dir not created: %v", keys(layers[5]))
	}
	for i, l := range layers[1:] {
		for n, h := range l {
			if h.ModTime.After(epoch) {
				t.Errorf("layer %d %s: mtime %v not clamped", i+1, n, h.ModTime)
			}
		}
	}
}

func keys(m map[string]*tar.Header) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	sort.Strings(k)
	return k
}

func TestOnBuild(t *testing.T) {
	s, dir := newEnv(t, map[string]string{"app.txt": "hi"})
	if _, err := build(t, s, dir, "FROM scratch\nONBUILD COPY app.txt /from-trigger\nONBUILD ENV TRIGGERED=yes\n", Options{Tags: []string{"skiff.local/parent"}}); err != nil {
		t.Fatal(err)
	}
	bi, err := build(t, s, dir, "FROM skiff.local/parent\nLABEL child=1\n", Options{Tags: []string{"skiff.local/child"}})
	if err != nil {
		t.Fatalf("%v\n%s", err, bi.out)
	}
	if len(bi.img.Config.OnBuild) != 0 {
		t.Errorf("child kept OnBuild %q", bi.img.Config.OnBuild)
	}
	if !contains(bi.img.Config.Env, "TRIGGERED=yes") || len(bi.img.RootFS.DiffIDs) != 1 {
		t.Errorf("triggers did not run: env %q layers %d\n%s", bi.img.Config.Env, len(bi.img.RootFS.DiffIDs), bi.out)
	}
	if _, bodies := readLayers(t, s, "skiff.local/child"); bodies["from-trigger"] != "hi" {
		t.Errorf("trigger COPY missing: %v", bodies)
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func TestBuildErrors(t *testing.T) {
	tests := []struct {
		name, dockerfile string
		want             []string
		kind             error
	}{
		{"unknown instruction", "FROM scratch\n\nFOO bar\n", []string{"line 3", "unknown instruction", "FOO"}, ErrInvalid},
		{"missing from", "# comment\nLABEL a=b\n", []string{"line 2", "FROM"}, ErrInvalid},
		{"empty", "", []string{"FROM"}, ErrInvalid},
		{"bad json cmd", "FROM scratch\nCMD [\"a\", 'b']\n", []string{"line 2", "bad JSON"}, ErrInvalid},
		{"bad json entrypoint", "FROM scratch\nLABEL a=b\nENTRYPOINT [/bin/sh]\n", []string{"line 3", "bad JSON"}, ErrInvalid},
		{"run without runner", "FROM scratch\nCOPY app.txt /\nRUN echo hi\n", []string{"line 3", "RUN needs the container engine"}, ErrUnavailable},
		{"missing source", "FROM scratch\nCOPY nope /\n", []string{"line 2", "not found"}, ErrNotFound},
		{"remote add", "FROM scratch\nADD https://example.com/x.tgz /\n", []string{"line 2", "cannot fetch remote URLs"}, ErrUnavailable},
		{"missing base", "FROM skiff.local/nope\n", []string{"line 1", "not in the local store"}, ErrNotFound},
		{"bad target", "FROM scratch AS a\n", []string{"target stage"}, ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, dir := newEnv(t, map[string]string{"app.txt": "x"})
			before, _ := s.Refs(context.Background())
			opts := Options{Tags: []string{"skiff.local/should-not-exist"}}
			if tc.name == "bad target" {
				opts.Target = "zzz"
			}
			_, err := build(t, s, dir, tc.dockerfile, opts)
			if err == nil {
				t.Fatal("build succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if !errors.Is(err, tc.kind) {
				t.Errorf("error %q is not %v", err, tc.kind)
			}
			after, _ := s.Refs(context.Background())
			if len(after) != len(before) {
				t.Errorf("failed build left refs: %v", after)
			}
		})
	}
}

// fakeRunner writes a file into the upper dir instead of running anything.
type fakeRunner struct{ reqs []RunRequest }

func (f *fakeRunner) Run(ctx context.Context, req RunRequest) error {
	f.reqs = append(f.reqs, req)
	return os.WriteFile(filepath.Join(req.UpperDir, "ran"), []byte(strings.Join(req.Cmd, " ")), 0o644)
}

func TestRunWithRunner(t *testing.T) {
	s, dir := newEnv(t, nil)
	r := &fakeRunner{}
	id, err := New(s, r).Build(context.Background(), Options{ContextDir: dir, SourceDateEpoch: &epoch,
		DockerfileBytes: []byte("FROM skiff.local/base\nARG X=1\nUSER app\nWORKDIR /srv\nRUN echo $X > /x\n")})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.reqs) != 1 {
		t.Fatalf("%d runs", len(r.reqs))
	}
	q := r.reqs[0]
	if !reflect.DeepEqual(q.Cmd, []string{"/bin/sh", "-c", "echo $X > /x"}) || q.User != "app" || q.WorkDir != "/srv" || !contains(q.Env, "X=1") || len(q.Layers) != 1 {
		t.Errorf("request %+v", q)
	}
	cb, _ := s.ReadBlob(context.Background(), id, 0)
	var img dockerspec.DockerOCIImage
	json.Unmarshal(cb, &img)
	if len(img.RootFS.DiffIDs) != 2 {
		t.Errorf("%d layers, want 2", len(img.RootFS.DiffIDs))
	}
}

func TestCache(t *testing.T) {
	s, dir := newEnv(t, map[string]string{"a": "1", "b": "2"})
	df := "FROM skiff.local/base\nENV X=1\nCOPY a /a\nLABEL l=1\nCOPY b /b\nCMD [\"x\"]\n"
	first, err := build(t, s, dir, df, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(first.out, "Using cache"); n != 0 {
		t.Errorf("first build: %d cache hits", n)
	}
	again, err := build(t, s, dir, df, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(again.out, "Using cache"); n != 5 {
		t.Errorf("rebuild: %d cache hits, want 5\n%s", n, again.out)
	}
	if again.id != first.id {
		t.Errorf("rebuild id %s != %s", again.id, first.id)
	}
	writeFiles(t, dir, map[string]string{"b": "changed"})
	changed, err := build(t, s, dir, df, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// ENV, COPY a, LABEL hit; COPY b and CMD rebuilt.
	if n := strings.Count(changed.out, "Using cache"); n != 3 {
		t.Errorf("after change: %d cache hits, want 3\n%s", n, changed.out)
	}
	if changed.id == first.id {
		t.Error("changed file gave the same image")
	}
	nc, err := build(t, s, dir, df, Options{NoCache: true})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(nc.out, "Using cache") || nc.id != changed.id {
		t.Errorf("--no-cache: hits or different id\n%s", nc.out)
	}
	// Build args in scope are part of the key.
	dfArg := "FROM scratch\nARG V=1\nLABEL x=$V\n"
	build(t, s, dir, dfArg, Options{})
	other, _ := build(t, s, dir, dfArg, Options{BuildArgs: map[string]string{"V": "2"}})
	if strings.Contains(other.out, "Using cache") || other.img.Config.Labels["x"] != "2" {
		t.Errorf("build-arg change hit the cache:\n%s", other.out)
	}
}

func TestDeterministic(t *testing.T) {
	df := "FROM skiff.local/base\nCOPY . /app/\nWORKDIR /app/x\nENV A=b\n"
	files := map[string]string{"f1": "1", "d/f2": "2"}
	var ids []digest.Digest
	var mans []digest.Digest
	for range 2 {
		s, dir := newEnv(t, files)
		bi, err := build(t, s, dir, df, Options{Tags: []string{"skiff.local/det"}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, bi.id)
		d, _ := s.Ref(context.Background(), "skiff.local/det:latest")
		mans = append(mans, d.Digest)
	}
	if ids[0] != ids[1] || mans[0] != mans[1] {
		t.Errorf("two builds differ: %v %v", ids, mans)
	}
	// SOURCE_DATE_EPOCH as a build arg works the same.
	s, dir := newEnv(t, files)
	var out bytes.Buffer
	id, err := New(s, nil).Build(context.Background(), Options{ContextDir: dir, DockerfileBytes: []byte(df), Platform: "linux/amd64",
		BuildArgs: map[string]string{"SOURCE_DATE_EPOCH": "1700000000"}, Quiet: true, Progress: &out})
	if err != nil {
		t.Fatal(err)
	}
	if id != ids[0] {
		t.Errorf("SOURCE_DATE_EPOCH build arg: %s, want %s", id, ids[0])
	}
	if strings.TrimSpace(out.String()) != string(id) {
		t.Errorf("quiet output %q, want only the id", out.String())
	}
}

func TestNormalizeName(t *testing.T) {
	for in, want := range map[string]string{
		"hello":                "docker.io/library/hello:latest",
		"me/app:v1":            "docker.io/me/app:v1",
		"skiff.local/busybox":  "skiff.local/busybox:latest",
		"localhost:5000/a/b:c": "localhost:5000/a/b:c",
	} {
		if got, err := NormalizeName(in); err != nil || got != want {
			t.Errorf("NormalizeName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := NormalizeName("Bad Name"); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad name: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"FROM scratch\nCOPY a /\n", "ARG X\nFROM $X AS y\nCMD [\"a\"\n", "FROM a\nONBUILD ONBUILD RUN x\n", "HEALTHCHECK CMD [x", "# escape=`\nFROM x`\n"} {
		f.Add(s)
	}
	s := content.New(f.TempDir())
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, df string) {
		_, _ = New(s, nil).Build(context.Background(), Options{ContextDir: dir, DockerfileBytes: []byte(df), NoCache: true})
	})
}

func benchBuild(b *testing.B, noCache bool) {
	s, dir := newEnv(b, map[string]string{"file": strings.Repeat("x", 64<<10)})
	bl := New(s, nil)
	opts := Options{ContextDir: dir, DockerfileBytes: []byte("FROM skiff.local/base\nCOPY file /\n"), NoCache: noCache, Tags: []string{"skiff.local/bench"}}
	if _, err := bl.Build(context.Background(), opts); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := bl.Build(context.Background(), opts); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBuildNoCache(b *testing.B) { benchBuild(b, true) }
func BenchmarkBuildCached(b *testing.B)  { benchBuild(b, false) }
