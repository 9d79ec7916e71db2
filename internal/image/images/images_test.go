package images

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"skiff.dev/skiff/internal/image/build"
	"skiff.dev/skiff/internal/image/content"
)

// testImage makes a random image with layers layers, the given labels and
// a history of one entry per layer plus a trailing config-only step.
func testImage(t *testing.T, layers int, labels map[string]string, created time.Time) v1.Image {
	t.Helper()
	img, err := random.Image(512, int64(layers))
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.Created = v1.Time{Time: created}
	cf.Author = "skiff test"
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Labels = labels
	cf.Config.Env = []string{"PATH=/bin", "A=b"}
	cf.Config.Cmd = []string{"/bin/sh"}
	cf.Config.WorkingDir = "/w"
	cf.History = nil
	for i := range layers {
		cf.History = append(cf.History, v1.History{Created: v1.Time{Time: created}, CreatedBy: "COPY f" + string(rune('0'+i)) + " / # buildkit", Comment: "buildkit.dockerfile.v0"})
	}
	cf.History = append(cf.History, v1.History{Created: v1.Time{Time: created}, CreatedBy: `CMD ["/bin/sh"]`, EmptyLayer: true})
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// putImage writes img's blobs and an OCI manifest into store and points
// each of names (normalised) at it. It returns the image ID.
func putImage(t *testing.T, store *content.Store, img v1.Image, names ...string) string {
	t.Helper()
	ctx := context.Background()
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	man := ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest}
	for _, l := range layers {
		d, _ := l.Digest()
		size, _ := l.Size()
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		desc, err := store.WriteBlob(ctx, rc, size, digest.Digest(d.String()))
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		desc.MediaType = ocispec.MediaTypeImageLayerGzip
		man.Layers = append(man.Layers, desc)
	}
	raw, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cdesc, err := store.WriteBlob(ctx, bytes.NewReader(raw), int64(len(raw)), digest.FromBytes(raw))
	if err != nil {
		t.Fatal(err)
	}
	man.Config = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: cdesc.Digest, Size: cdesc.Size}
	mb, _ := json.Marshal(man)
	mdesc, err := store.WriteBlob(ctx, bytes.NewReader(mb), int64(len(mb)), digest.FromBytes(mb))
	if err != nil {
		t.Fatal(err)
	}
	mdesc.MediaType = ocispec.MediaTypeImageManifest
	for _, n := range names {
		nn, err := build.NormalizeName(n)
		if err != nil {
			t.Fatal(err)
		}
		if err := store.SetRef(ctx, nn, mdesc); err != nil {
			t.Fatal(err)
		}
	}
	return cdesc.Digest.String()
}

func newStore(t *testing.T) *content.Store {
	t.Helper()
	s := content.New(t.TempDir())
	if err := s.Init(); err != nil {
		t.Fatal(err)
	}
	return s
}

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

type fixture struct {
	store      *content.Store
	svc        *Service
	inUse      map[string]bool
	idA, idB   string
	imgA, imgB v1.Image
}

// newFixture stores image A as hello:v1 and hello:latest, image B as
// example.com/app:1.
func newFixture(t *testing.T) *fixture {
	f := &fixture{store: newStore(t), inUse: map[string]bool{}}
	f.svc = New(f.store, WithInUse(func(id string) bool { return f.inUse[id] }))
	f.imgA = testImage(t, 2, map[string]string{"app": "a"}, t0)
	f.imgB = testImage(t, 1, nil, t0.Add(time.Hour))
	f.idA = putImage(t, f.store, f.imgA, "hello:v1", "hello")
	f.idB = putImage(t, f.store, f.imgB, "example.com/app:1")
	return f
}

func TestList(t *testing.T) {
	f := newFixture(t)
	got, err := f.svc.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("List = %d images, want 2: %+v", len(got), got)
	}
	b, a := got[0], got[1] // newest first
	if a.ID != f.idA || b.ID != f.idB {
		t.Fatalf("ids = %s, %s; want %s, %s", a.ID, b.ID, f.idA, f.idB)
	}
	if want := []string{"docker.io/library/hello:latest", "docker.io/library/hello:v1"}; !slices.Equal(a.RepoTags, want) {
		t.Errorf("RepoTags = %v, want %v", a.RepoTags, want)
	}
	if len(a.RepoDigests) != 1 || !strings.HasPrefix(a.RepoDigests[0], "docker.io/library/hello@sha256:") {
		t.Errorf("RepoDigests = %v", a.RepoDigests)
	}
	if a.Created != t0.Unix() || a.Labels["app"] != "a" || b.Labels == nil {
		t.Errorf("created/labels: %+v / %+v", a, b)
	}
	wantSize := int64(0)
	ls, _ := f.imgA.Layers()
	for _, l := range ls {
		n, _ := l.Size()
		wantSize += n
	}
	if a.Size != wantSize {
		t.Errorf("Size = %d, want %d", a.Size, wantSize)
	}
}

// TestListSkipsInternalRefs: the registry keeps its own references (to
// layers as well as manifests) in the same store; they are not images.
func TestListSkipsInternalRefs(t *testing.T) {
	f := newFixture(t)
	ls, _ := f.imgA.Layers()
	ld, _ := ls[0].Digest()
	if err := f.store.SetRef(context.Background(), "registry//hello#"+ld.String(), ocispec.Descriptor{
		MediaType: "application/vnd.oci.image.layer.v1.tar+gzip", Digest: digest.Digest(ld.String())}); err != nil {
		t.Fatal(err)
	}
	got, err := f.svc.List(context.Background())
	if err != nil || len(got) != 2 {
		t.Fatalf("List = %d images, %v; want the 2 images only", len(got), err)
	}
}

func TestInspect(t *testing.T) {
	f := newFixture(t)
	hexA := strings.TrimPrefix(f.idA, "sha256:")
	cases := []struct {
		name, arg string
		wantID    string
		wantErr   error
	}{
		{"short name", "hello:v1", f.idA, nil},
		{"implicit latest", "hello", f.idA, nil},
		{"full name", "docker.io/library/hello:v1", f.idA, nil},
		{"other registry", "example.com/app:1", f.idB, nil},
		{"full id", f.idA, f.idA, nil},
		{"bare hex id", hexA, f.idA, nil},
		{"short id", hexA[:12], f.idA, nil},
		{"sha256 prefix", "sha256:" + hexA[:8], f.idA, nil},
		{"missing tag", "hello:v2", "", content.ErrNotFound},
		{"too short prefix is a name", hexA[:3], "", content.ErrNotFound},
		{"unknown id", strings.Repeat("0", 64), "", content.ErrNotFound},
		{"bad name", "Hello!!", "", content.ErrInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in, err := f.svc.Inspect(context.Background(), tc.arg)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if in.ID != tc.wantID {
				t.Fatalf("ID = %s, want %s", in.ID, tc.wantID)
			}
		})
	}

	in, err := f.svc.Inspect(context.Background(), "hello:v1")
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := f.imgA.ConfigFile()
	if in.Os != "linux" || in.Architecture != "amd64" || in.Author != "skiff test" || in.Created != t0.Format(time.RFC3339Nano) {
		t.Errorf("inspect header: %+v", in)
	}
	if in.Config.WorkingDir != "/w" || !slices.Equal(in.Config.Env, []string{"PATH=/bin", "A=b"}) || in.Config.Labels["app"] != "a" {
		t.Errorf("inspect config: %+v", in.Config)
	}
	if in.RootFS.Type != "layers" || len(in.RootFS.Layers) != 2 || in.RootFS.Layers[0] != cf.RootFS.DiffIDs[0].String() {
		t.Errorf("RootFS = %+v", in.RootFS)
	}
	if _, err := json.Marshal(in); err != nil {
		t.Error(err)
	}
}

func TestAmbiguousPrefix(t *testing.T) {
	all := map[digest.Digest]*image{
		"sha256:abcd1111" + digest.Digest(strings.Repeat("0", 56)): {},
		"sha256:abcd2222" + digest.Digest(strings.Repeat("0", 56)): {},
	}
	if _, _, _, err := byPrefix(all, "abcd", "abcd"); !errors.Is(err, content.ErrInvalid) || !strings.Contains(err.Error(), "ambiguous") {
		t.Fatalf("err = %v, want ambiguous ErrInvalid", err)
	}
	if _, _, _, err := byPrefix(all, "abcd1", "abcd1"); err != nil {
		t.Fatalf("unique prefix: %v", err)
	}
}

func TestHistory(t *testing.T) {
	f := newFixture(t)
	h, err := f.svc.History(context.Background(), "hello:v1")
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 3 {
		t.Fatalf("history = %d items, want 3: %+v", len(h), h)
	}
	if h[0].ID != f.idA || h[0].CreatedBy != `CMD ["/bin/sh"]` || h[0].Size != 0 || len(h[0].Tags) != 2 {
		t.Errorf("newest = %+v", h[0])
	}
	ls, _ := f.imgA.Layers()
	for i, want := range []struct {
		by string
		l  int
	}{{"COPY f1 / # buildkit", 1}, {"COPY f0 / # buildkit", 0}} {
		it := h[i+1]
		size, _ := ls[want.l].Size()
		if it.ID != "<missing>" || it.CreatedBy != want.by || it.Size != size || it.Comment != "buildkit.dockerfile.v0" || it.Created != t0.Unix() {
			t.Errorf("item %d = %+v", i+1, it)
		}
	}
}

func refNames(t *testing.T, s *content.Store) []string {
	t.Helper()
	refs, err := s.Refs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for n := range refs {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

func TestTag(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if err := f.svc.Tag(ctx, f.idB[7:19], "mine:x"); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Tag(ctx, "hello:v1", "example.com/app:1"); err != nil { // retag moves the name
		t.Fatal(err)
	}
	in, err := f.svc.Inspect(ctx, "mine:x")
	if err != nil || in.ID != f.idB {
		t.Fatalf("mine:x = %v, %v", in.ID, err)
	}
	in, err = f.svc.Inspect(ctx, "example.com/app:1")
	if err != nil || in.ID != f.idA {
		t.Fatalf("example.com/app:1 = %v, %v", in.ID, err)
	}
	if err := f.svc.Tag(ctx, "nope", "x"); !errors.Is(err, content.ErrNotFound) {
		t.Fatalf("tag missing = %v", err)
	}
	if err := f.svc.Tag(ctx, "hello", "BAD"); !errors.Is(err, content.ErrInvalid) {
		t.Fatalf("tag bad target = %v", err)
	}
}

func TestRemove(t *testing.T) {
	cases := []struct {
		name     string
		arg      func(f *fixture) string
		force    bool
		inUse    bool
		want     func(f *fixture) []Removed
		wantErr  error
		wantRefs []string
	}{
		{
			name:     "untag one of two names",
			arg:      func(*fixture) string { return "hello:v1" },
			want:     func(*fixture) []Removed { return []Removed{{Untagged: "docker.io/library/hello:v1"}} },
			wantRefs: []string{"docker.io/library/hello:latest", "example.com/app:1"},
		},
		{
			name:     "untag one of two names while in use",
			arg:      func(*fixture) string { return "hello" },
			inUse:    true,
			want:     func(*fixture) []Removed { return []Removed{{Untagged: "docker.io/library/hello:latest"}} },
			wantRefs: []string{"docker.io/library/hello:v1", "example.com/app:1"},
		},
		{
			name:     "last name deletes",
			arg:      func(*fixture) string { return "example.com/app:1" },
			want:     func(f *fixture) []Removed { return []Removed{{Untagged: "example.com/app:1"}, {Deleted: f.idB}} },
			wantRefs: []string{"docker.io/library/hello:latest", "docker.io/library/hello:v1"},
		},
		{
			name:     "by id with one name",
			arg:      func(f *fixture) string { return f.idB[7:19] },
			want:     func(f *fixture) []Removed { return []Removed{{Untagged: "example.com/app:1"}, {Deleted: f.idB}} },
			wantRefs: []string{"docker.io/library/hello:latest", "docker.io/library/hello:v1"},
		},
		{
			name:     "by id with several names needs force",
			arg:      func(f *fixture) string { return f.idA },
			wantErr:  ErrConflict,
			wantRefs: []string{"docker.io/library/hello:latest", "docker.io/library/hello:v1", "example.com/app:1"},
		},
		{
			name:  "by id with several names forced",
			arg:   func(f *fixture) string { return f.idA },
			force: true,
			want: func(f *fixture) []Removed {
				return []Removed{{Untagged: "docker.io/library/hello:latest"}, {Untagged: "docker.io/library/hello:v1"}, {Deleted: f.idA}}
			},
			wantRefs: []string{"example.com/app:1"},
		},
		{
			name:     "in use refused",
			arg:      func(*fixture) string { return "example.com/app:1" },
			inUse:    true,
			wantErr:  ErrConflict,
			wantRefs: []string{"docker.io/library/hello:latest", "docker.io/library/hello:v1", "example.com/app:1"},
		},
		{
			name:     "in use by id refused",
			arg:      func(f *fixture) string { return f.idB },
			inUse:    true,
			wantErr:  ErrConflict,
			wantRefs: []string{"docker.io/library/hello:latest", "docker.io/library/hello:v1", "example.com/app:1"},
		},
		{
			name:     "in use forced",
			arg:      func(*fixture) string { return "example.com/app:1" },
			inUse:    true,
			force:    true,
			want:     func(f *fixture) []Removed { return []Removed{{Untagged: "example.com/app:1"}, {Deleted: f.idB}} },
			wantRefs: []string{"docker.io/library/hello:latest", "docker.io/library/hello:v1"},
		},
		{
			name:     "missing",
			arg:      func(*fixture) string { return "nope" },
			wantErr:  content.ErrNotFound,
			wantRefs: []string{"docker.io/library/hello:latest", "docker.io/library/hello:v1", "example.com/app:1"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			if tc.inUse {
				f.inUse[f.idA], f.inUse[f.idB] = true, true
			}
			got, err := f.svc.Remove(context.Background(), tc.arg(f), tc.force)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatal(err)
			} else if want := tc.want(f); !slices.Equal(got, want) {
				t.Fatalf("Remove = %+v, want %+v", got, want)
			}
			if refs := refNames(t, f.store); !slices.Equal(refs, tc.wantRefs) {
				t.Fatalf("refs = %v, want %v", refs, tc.wantRefs)
			}
		})
	}
}

func TestSaveRemoveLoad(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	before, err := f.svc.Inspect(ctx, "hello:v1")
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := f.svc.Save(ctx, &buf, "hello:v1", "example.com/app:1"); err != nil {
		t.Fatal(err)
	}
	files := tarFiles(t, buf.Bytes())
	var m tarball.Manifest
	if err := json.Unmarshal(files["manifest.json"], &m); err != nil {
		t.Fatal(err)
	}
	if len(m) != 2 || m[0].RepoTags[0] != "example.com/app:1" || m[1].RepoTags[0] != "hello:v1" {
		t.Fatalf("manifest.json = %s", files["manifest.json"])
	}
	if _, ok := files["repositories"]; !ok {
		t.Fatal("no repositories file")
	}
	for _, arg := range []string{f.idA, f.idB} {
		if _, err := f.svc.Remove(ctx, arg, true); err != nil {
			t.Fatal(err)
		}
	}
	if refs := refNames(t, f.store); len(refs) != 0 {
		t.Fatalf("refs after rmi = %v", refs)
	}
	loaded, err := f.svc.Load(ctx, bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"docker.io/library/hello:v1", "example.com/app:1"}; !slices.Equal(loaded, want) {
		t.Fatalf("loaded = %v, want %v", loaded, want)
	}
	after, err := f.svc.Inspect(ctx, "hello:v1")
	if err != nil {
		t.Fatal(err)
	}
	if after.ID != before.ID || !slices.Equal(after.RootFS.Layers, before.RootFS.Layers) || after.RepoDigests[0] != before.RepoDigests[0] {
		t.Fatalf("round trip changed the image:\n%+v\n%+v", before, after)
	}
	if in, err := f.svc.Inspect(ctx, "example.com/app:1"); err != nil || in.ID != f.idB {
		t.Fatalf("app = %v, %v", in.ID, err)
	}
	// Save by ID saves under every name.
	buf.Reset()
	if err := f.svc.Save(ctx, &buf, f.idA); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(tarFiles(t, buf.Bytes())["manifest.json"], &m); err != nil || len(m) != 1 || len(m[0].RepoTags) != 1 {
		t.Fatalf("manifest.json by id = %+v, %v", m, err)
	}
}

func TestLoadGGCRTarball(t *testing.T) {
	cases := []struct {
		name  string
		write func(t *testing.T, w io.Writer, img v1.Image)
	}{
		{"tarball.Write", func(t *testing.T, w io.Writer, img v1.Image) {
			tag, _ := name.NewTag("podman.example/app:2")
			if err := tarball.Write(tag, img, w); err != nil {
				t.Fatal(err)
			}
		}},
		{"oci archive", func(t *testing.T, w io.Writer, img v1.Image) {
			dir := t.TempDir()
			p, err := layout.Write(dir, empty.Index)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.AppendImage(img, layout.WithAnnotations(map[string]string{
				"io.containerd.image.name": "podman.example/app:2",
				ocispec.AnnotationRefName:  "2",
			})); err != nil {
				t.Fatal(err)
			}
			tarDir(t, dir, w)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store := newStore(t)
			svc := New(store)
			img := testImage(t, 2, map[string]string{"k": "v"}, t0)
			var buf bytes.Buffer
			tc.write(t, &buf, img)
			loaded, err := svc.Load(context.Background(), &buf)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(loaded, []string{"podman.example/app:2"}) {
				t.Fatalf("loaded = %v", loaded)
			}
			in, err := svc.Inspect(context.Background(), "podman.example/app:2")
			if err != nil {
				t.Fatal(err)
			}
			id, _ := img.ConfigName()
			cf, _ := img.ConfigFile()
			if in.ID != id.String() || in.RootFS.Layers[1] != cf.RootFS.DiffIDs[1].String() || in.Config.Labels["k"] != "v" {
				t.Fatalf("inspect = %+v", in)
			}
		})
	}
}

func TestLoadBadInput(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	var good bytes.Buffer
	if err := f.svc.Save(ctx, &good, "hello:v1"); err != nil {
		t.Fatal(err)
	}
	goodFiles := tarFiles(t, good.Bytes())
	cases := []struct {
		name    string
		archive func(t *testing.T) []byte
		errHas  string
	}{
		{"not a tar", func(*testing.T) []byte { return []byte("hello, world, this is not a tar archive at all") }, "not a tar"},
		{"empty", func(*testing.T) []byte { return nil }, "not a tar"},
		{"no manifest.json", func(t *testing.T) []byte {
			return makeTar(t, map[string][]byte{"foo": []byte("bar")})
		}, "manifest.json"},
		{"corrupt layer", func(t *testing.T) []byte {
			files := map[string][]byte{}
			for n, b := range goodFiles {
				files[n] = b
			}
			ls, _ := f.imgB.Layers() // a valid gzip layer with other contents
			rc, _ := ls[0].Compressed()
			other, _ := io.ReadAll(rc)
			for n := range files {
				if strings.HasSuffix(n, ".tar.gz") {
					files[n] = other
					break
				}
			}
			return makeTar(t, files)
		}, "diff_id"},
		{"truncated layer", func(t *testing.T) []byte {
			files := map[string][]byte{}
			for n, b := range goodFiles {
				files[n] = b
			}
			for n := range files {
				if strings.HasSuffix(n, ".tar.gz") {
					files[n] = files[n][:len(files[n])/2]
				}
			}
			return makeTar(t, files)
		}, "layer"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			store := newStore(t)
			_, err := New(store).Load(ctx, bytes.NewReader(tc.archive(t)))
			if !errors.Is(err, content.ErrInvalid) || !strings.Contains(err.Error(), tc.errHas) {
				t.Fatalf("err = %v, want ErrInvalid mentioning %q", err, tc.errHas)
			}
			if refs := refNames(t, store); len(refs) != 0 {
				t.Fatalf("tagged after failed load: %v", refs)
			}
		})
	}
}

func tarFiles(t *testing.T, b []byte) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		} else if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out[hdr.Name] = data
	}
}

func makeTar(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(files[n])
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func tarDir(t *testing.T, dir string, w io.Writer) {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		files[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	w.Write(makeTar(t, files))
}
