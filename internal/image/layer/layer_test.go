package layer

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: needs root (ownership, device nodes, trusted.* xattrs, overlay mounts)")
	}
}

// entry is one tar entry in a test table; body is the content of regular
// files. Zero ModTime means mtime2020.
type entry struct {
	hdr  tar.Header
	body string
}

var mtime2020 = time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)

func dir(name string, mode int64, uid, gid int) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, Uid: uid, Gid: gid}}
}

func file(name string, mode int64, uid, gid int, body string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Uid: uid, Gid: gid, Size: int64(len(body))}, body: body}
}

func symlink(name, target string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}}
}

func hardlink(name, target string) entry {
	return entry{hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target}}
}

func makeTar(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		hdr := e.hdr
		if hdr.ModTime.IsZero() {
			hdr.ModTime = mtime2020
		}
		if err := tw.WriteHeader(&hdr); err != nil {
			t.Fatalf("write header %s: %v", hdr.Name, err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// readTar returns the entries of a tarball, sorted by name, with only the
// fields a layer cares about.
func readTar(t testing.TB, b []byte) []entry {
	t.Helper()
	var out []entry
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("read tar: %v", err)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, entry{hdr: normalize(*hdr), body: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].hdr.Name < out[j].hdr.Name })
	return out
}

func normalize(h tar.Header) tar.Header {
	n := tar.Header{
		Typeflag: h.Typeflag, Name: h.Name, Linkname: h.Linkname, Size: h.Size,
		Mode: h.Mode, Uid: h.Uid, Gid: h.Gid, ModTime: h.ModTime.UTC(),
		Devmajor: h.Devmajor, Devminor: h.Devminor,
	}
	if n.ModTime.IsZero() {
		n.ModTime = mtime2020
	}
	for k, v := range h.PAXRecords {
		if strings.HasPrefix(k, paxXattrPrefix) {
			if n.PAXRecords == nil {
				n.PAXRecords = map[string]string{}
			}
			n.PAXRecords[k] = v
		}
	}
	switch n.Typeflag {
	case tar.TypeRegA:
		n.Typeflag = tar.TypeReg
	case tar.TypeSymlink:
		n.Mode = 0o777 // symlink modes are not kept by Linux
	case tar.TypeLink:
		n.Linkname = strings.TrimPrefix(path.Clean("/"+n.Linkname), "/")
		n.Mode, n.Uid, n.Gid, n.ModTime, n.Size = 0, 0, 0, time.Time{}, 0
	}
	return n
}

func diffTar(t testing.TB, dir string, opts ...DiffOption) ([]byte, digest.Digest) {
	t.Helper()
	var buf bytes.Buffer
	id, err := Diff(context.Background(), dir, &buf, opts...)
	if err != nil {
		t.Fatalf("Diff(%s): %v", dir, err)
	}
	if want := digest.FromBytes(buf.Bytes()); id != want {
		t.Fatalf("Diff returned diffID %s, the stream hashes to %s", id, want)
	}
	return buf.Bytes(), id
}

func lstat(t testing.TB, p string) unix.Stat_t {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatalf("lstat: %v", err)
	}
	return st
}

func isWhiteoutDevice(t testing.TB, p string) bool {
	t.Helper()
	st := lstat(t, p)
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

func isOpaque(t testing.TB, p string) bool {
	t.Helper()
	buf := make([]byte, 8)
	n, err := unix.Lgetxattr(p, overlayOpaqueXattr, buf)
	return err == nil && string(buf[:n]) == "y"
}

func TestUnpackDiffRoundTrip(t *testing.T) {
	requireRoot(t)
	tests := []struct {
		name    string
		entries []entry
		check   func(t *testing.T, root string)
	}{
		{
			name: "files, modes and ownership",
			entries: []entry{
				dir("bin/", 0o755, 0, 0),
				file("bin/tool", 0o4755, 0, 0, "#!/bin/sh\necho hi\n"),
				dir("etc/", 0o755, 0, 0),
				file("etc/empty", 0o644, 0, 0, ""),
				file("etc/passwd", 0o644, 0, 0, "root:x:0:0:root:/root:/bin/sh\n"),
				dir("home/", 0o755, 0, 0),
				dir("home/u/", 0o700, 1000, 1000),
				file("home/u/notes", 0o600, 1000, 1001, strings.Repeat("x", 70000)),
				dir("tmp/", 0o1777, 0, 0),
			},
			check: func(t *testing.T, root string) {
				st := lstat(t, filepath.Join(root, "home/u/notes"))
				if st.Uid != 1000 || st.Gid != 1001 || st.Mode&0o7777 != 0o600 {
					t.Errorf("home/u/notes: uid %d gid %d mode %#o", st.Uid, st.Gid, st.Mode&0o7777)
				}
				if st := lstat(t, filepath.Join(root, "bin/tool")); st.Mode&0o7777 != 0o4755 {
					t.Errorf("bin/tool mode %#o, want setuid 04755", st.Mode&0o7777)
				}
				if st := lstat(t, filepath.Join(root, "tmp")); st.Mode&0o7777 != 0o1777 || st.Mtim.Sec != mtime2020.Unix() {
					t.Errorf("tmp mode %#o mtime %d", st.Mode&0o7777, st.Mtim.Sec)
				}
			},
		},
		{
			name: "symlinks",
			entries: []entry{
				symlink("abs", "/etc/passwd"),
				symlink("dangling", "nowhere/at/all"),
				symlink("lib", "usr/lib"),
				dir("usr/", 0o755, 0, 0),
				dir("usr/lib/", 0o755, 0, 0),
				file("usr/lib/libc.so", 0o755, 0, 0, "ELF"),
			},
			check: func(t *testing.T, root string) {
				if got, err := os.Readlink(filepath.Join(root, "abs")); err != nil || got != "/etc/passwd" {
					t.Errorf("abs -> %q, %v", got, err)
				}
			},
		},
		{
			name: "hardlinks",
			entries: []entry{
				dir("bin/", 0o755, 0, 0),
				file("bin/a", 0o755, 0, 0, "busybox"),
				hardlink("bin/b", "bin/a"),
				hardlink("bin/c", "/bin/a"),
			},
			check: func(t *testing.T, root string) {
				a, b := lstat(t, filepath.Join(root, "bin/a")), lstat(t, filepath.Join(root, "bin/c"))
				if a.Ino != b.Ino || a.Nlink != 3 {
					t.Errorf("bin/a ino %d nlink %d, bin/c ino %d", a.Ino, a.Nlink, b.Ino)
				}
			},
		},
		{
			name: "devices and fifos",
			entries: []entry{
				dir("dev/", 0o755, 0, 0),
				{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3}},
				{hdr: tar.Header{Typeflag: tar.TypeBlock, Name: "dev/loop0", Mode: 0o660, Gid: 6, Devmajor: 7, Devminor: 0}},
				{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "dev/pipe", Mode: 0o600}},
			},
			check: func(t *testing.T, root string) {
				st := lstat(t, filepath.Join(root, "dev/null"))
				if st.Mode&unix.S_IFMT != unix.S_IFCHR || unix.Major(st.Rdev) != 1 || unix.Minor(st.Rdev) != 3 {
					t.Errorf("dev/null: mode %#o rdev %d:%d", st.Mode, unix.Major(st.Rdev), unix.Minor(st.Rdev))
				}
			},
		},
		{
			name: "xattrs",
			entries: []entry{
				{hdr: tar.Header{Typeflag: tar.TypeReg, Name: "f", Mode: 0o644, PAXRecords: map[string]string{
					paxXattrPrefix + "user.skiff": "yes", paxXattrPrefix + "trusted.test": "\x00\x01binary",
				}}},
				{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "d/", Mode: 0o755, PAXRecords: map[string]string{
					paxXattrPrefix + "user.dir": "1",
				}}},
			},
			check: func(t *testing.T, root string) {
				buf := make([]byte, 16)
				n, err := unix.Lgetxattr(filepath.Join(root, "f"), "trusted.test", buf)
				if err != nil || string(buf[:n]) != "\x00\x01binary" {
					t.Errorf("f trusted.test = %q, %v", buf[:n], err)
				}
			},
		},
		{
			name: "whiteouts",
			entries: []entry{
				file(".wh.gone", 0, 0, 0, ""),
				dir("d/", 0o755, 0, 0),
				file("d/.wh..wh..opq", 0, 0, 0, ""),
				file("d/kept", 0o644, 0, 0, "new"),
				dir("e/", 0o755, 0, 0),
				file("e/.wh.sub", 0, 0, 0, ""),
			},
			check: func(t *testing.T, root string) {
				for _, p := range []string{"gone", "e/sub"} {
					if !isWhiteoutDevice(t, filepath.Join(root, p)) {
						t.Errorf("%s is not a 0:0 character device", p)
					}
				}
				if !isOpaque(t, filepath.Join(root, "d")) {
					t.Errorf("d is not marked opaque")
				}
				if isOpaque(t, filepath.Join(root, "e")) {
					t.Errorf("e is marked opaque")
				}
				if _, err := os.Lstat(filepath.Join(root, "d", opaqueWhiteout)); !os.IsNotExist(err) {
					t.Errorf("opaque marker left as a file: %v", err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := makeTar(t, tt.entries...)
			root := filepath.Join(t.TempDir(), "root")
			id, err := Unpack(context.Background(), bytes.NewReader(in), root)
			if err != nil {
				t.Fatalf("Unpack: %v", err)
			}
			if want := digest.FromBytes(in); id != want {
				t.Errorf("Unpack diffID = %s, want %s", id, want)
			}
			tt.check(t, root)

			out, _ := diffTar(t, root)
			got, want := readTar(t, out), readTar(t, in)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("Diff after Unpack differs from the input:\n got  %s\n want %s", describe(got), describe(want))
			}
		})
	}
}

func describe(es []entry) string {
	var b strings.Builder
	for _, e := range es {
		h := e.hdr
		fmt.Fprintf(&b, "\n    %c %s mode=%#o %d:%d size=%d link=%q mtime=%d dev=%d:%d xattrs=%v",
			h.Typeflag, h.Name, h.Mode, h.Uid, h.Gid, h.Size, h.Linkname, h.ModTime.Unix(), h.Devmajor, h.Devminor, h.PAXRecords)
	}
	return b.String()
}

func TestUnpackCompression(t *testing.T) {
	requireRoot(t)
	plain := makeTar(t, dir("a/", 0o755, 0, 0), file("a/b", 0o644, 0, 0, strings.Repeat("skiff ", 1000)))
	want := digest.Digest("sha256:" + hexSHA256(plain))

	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(plain)
	zw.Close()
	zst, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	zs := zst.EncodeAll(plain, nil)

	for name, in := range map[string][]byte{"plain": plain, "gzip": gz.Bytes(), "zstd": zs} {
		t.Run(name, func(t *testing.T) {
			root := t.TempDir()
			id, err := Unpack(context.Background(), bytes.NewReader(in), root)
			if err != nil {
				t.Fatalf("Unpack: %v", err)
			}
			if id != want {
				t.Errorf("diffID = %s, want %s", id, want)
			}
			if b, err := os.ReadFile(filepath.Join(root, "a/b")); err != nil || len(b) != 6000 {
				t.Errorf("a/b: %d bytes, %v", len(b), err)
			}
		})
	}
}

func hexSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestUnpackRefuses(t *testing.T) {
	requireRoot(t)
	outside := fmt.Sprintf("skiff-layer-test-%d", os.Getpid())
	valid := makeTar(t, file("ok", 0o644, 0, 0, "hello"))
	var corruptGzip bytes.Buffer
	zw := gzip.NewWriter(&corruptGzip)
	zw.Write(valid)
	zw.Close()
	cg := corruptGzip.Bytes()
	cg[len(cg)-5] ^= 0xff // breaks the CRC

	tests := []struct {
		name string
		in   []byte
	}{
		{"dot-dot file", makeTar(t, file("../"+outside, 0o644, 0, 0, "x"))},
		{"dot-dot deep", makeTar(t, file("a/../../"+outside, 0o644, 0, 0, "x"))},
		{"dot-dot dir", makeTar(t, dir("../"+outside+"/", 0o755, 0, 0))},
		{"dot-dot etc/passwd", makeTar(t, file("../etc/passwd", 0o644, 0, 0, "x"))},
		{"write through symlink to /", makeTar(t, symlink("escape", "/"), file("escape/tmp/"+outside, 0o644, 0, 0, "x"))},
		{"write through symlink to ..", makeTar(t, symlink("up", ".."), file("up/"+outside, 0o644, 0, 0, "x"))},
		{"mkdir through symlink", makeTar(t, symlink("up", "../.."), dir("up/"+outside+"/", 0o755, 0, 0))},
		{"whiteout through symlink", makeTar(t, symlink("up", ".."), file("up/.wh."+outside, 0, 0, 0, ""))},
		{"hardlink out of the layer", makeTar(t, hardlink("l", "../"+outside))},
		{"hardlink through symlink", makeTar(t, symlink("up", ".."), hardlink("l", "up/"+outside))},
		{"hardlink to missing", makeTar(t, hardlink("l", "missing"))},
		{"truncated", valid[:600]},
		{"truncated header", valid[:100]},
		{"cut at a block boundary", valid[:1024]},
		{"only one zero block", valid[:1536]},
		{"empty", nil},
		{"garbage", bytes.Repeat([]byte("not a tar "), 100)},
		{"corrupt gzip", cg},
		{"xz", append([]byte{0xfd, '7', 'z', 'X', 'Z', 0}, valid...)},
		{"sparse", makeTar(t, entry{hdr: tar.Header{Typeflag: tar.TypeGNUSparse, Name: "s", Format: tar.FormatGNU}})},
	}
	// The outside file must not exist before: the test checks it afterwards.
	for _, p := range []string{"/tmp/" + outside, "/" + outside} {
		if _, err := os.Lstat(p); err == nil {
			t.Fatalf("%s exists before the test", p)
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := t.TempDir()
			root := filepath.Join(parent, "root")
			_, err := Unpack(context.Background(), bytes.NewReader(tt.in), root)
			if err == nil {
				t.Fatalf("Unpack succeeded, want an error")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v does not wrap ErrInvalid", err)
			}
			t.Logf("error: %v", err)
			assertOnlyRoot(t, parent)
			for _, p := range []string{"/tmp/" + outside, "/" + outside} {
				if _, err := os.Lstat(p); err == nil {
					os.RemoveAll(p)
					t.Errorf("%s was written outside the layer", p)
				}
			}
		})
	}
}

// assertOnlyRoot checks that the parent of an unpack target holds nothing
// but the target.
func assertOnlyRoot(t testing.TB, parent string) {
	t.Helper()
	des, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		if de.Name() != "root" {
			t.Errorf("%s was written next to the layer directory", de.Name())
		}
	}
}

func TestUnpackLaterEntriesWin(t *testing.T) {
	requireRoot(t)
	root := t.TempDir()
	in := makeTar(t,
		dir("d/", 0o755, 0, 0), file("d/f", 0o644, 0, 0, "old"),
		file("d", 0o600, 0, 0, "now a file"),
		file("x", 0o644, 0, 0, "old"), symlink("x", "target"),
	)
	if _, err := Unpack(context.Background(), bytes.NewReader(in), root); err != nil {
		t.Fatalf("Unpack: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(root, "d")); err != nil || string(b) != "now a file" {
		t.Errorf("d = %q, %v", b, err)
	}
	if got, err := os.Readlink(filepath.Join(root, "x")); err != nil || got != "target" {
		t.Errorf("x -> %q, %v", got, err)
	}
}

func TestDiffDeterministic(t *testing.T) {
	requireRoot(t)
	in := makeTar(t,
		dir("b/", 0o755, 0, 0), file("b/1", 0o644, 0, 0, "one"), hardlink("b/2", "b/1"),
		dir("a/", 0o755, 0, 0), file("a/z", 0o644, 0, 0, "z"), file("a/y", 0o644, 0, 0, "y"),
		file(strings.Repeat("long/", 0)+strings.Repeat("n", 150), 0o644, 0, 0, "long name"),
	)
	one, two := t.TempDir(), t.TempDir()
	for _, d := range []string{one, two} {
		if _, err := Unpack(context.Background(), bytes.NewReader(in), d); err != nil {
			t.Fatal(err)
		}
	}
	_, id1 := diffTar(t, one)
	_, id1again := diffTar(t, one)
	_, id2 := diffTar(t, two)
	if id1 != id1again || id1 != id2 {
		t.Errorf("diffs of equal trees differ: %s, %s, %s", id1, id1again, id2)
	}

	// Touching files changes the digest, unless times are clamped.
	now := time.Now()
	if err := os.Chtimes(filepath.Join(two, "a/y"), now, now); err != nil {
		t.Fatal(err)
	}
	if _, id := diffTar(t, two); id == id1 {
		t.Errorf("touching a file did not change the digest")
	}
	_, c1 := diffTar(t, one, WithSourceDateEpoch(Epoch))
	_, c2 := diffTar(t, two, WithSourceDateEpoch(Epoch))
	if c1 != c2 {
		t.Errorf("clamped diffs differ: %s, %s", c1, c2)
	}
	out, _ := diffTar(t, one, WithSourceDateEpoch(Epoch))
	tr := tar.NewReader(bytes.NewReader(out))
	var names []string
	for {
		hdr, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, hdr.Name)
		if !hdr.ModTime.Equal(Epoch) {
			t.Errorf("%s mtime %v, want the epoch", hdr.Name, hdr.ModTime)
		}
		if hdr.Uname != "" || hdr.Gname != "" {
			t.Errorf("%s has user/group names", hdr.Name)
		}
		if len(hdr.Name) < 100 && hdr.Format&tar.FormatPAX != 0 && len(hdr.PAXRecords) > 0 {
			t.Errorf("%s needlessly uses PAX: %v", hdr.Name, hdr.PAXRecords)
		}
	}
	want := []string{"a/", "a/y", "a/z", "b/", "b/1", "b/2", strings.Repeat("n", 150)}
	if !reflect.DeepEqual(names, want) {
		t.Errorf("entry order %q, want %q", names, want)
	}
}

func TestOverlay(t *testing.T) {
	requireRoot(t)
	ctx := context.Background()
	base := t.TempDir()
	p := func(s string) string { return filepath.Join(base, s) }
	for _, d := range []string{"upper", "work", "merged", "merged2", "work2", "upper2"} {
		if err := os.Mkdir(p(d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	unpack := func(dir string, entries ...entry) {
		t.Helper()
		if _, err := Unpack(ctx, bytes.NewReader(makeTar(t, entries...)), p(dir)); err != nil {
			t.Fatalf("Unpack %s: %v", dir, err)
		}
	}
	unpack("lower1",
		file("a", 0o644, 0, 0, "a"), file("keep", 0o644, 0, 0, "keep"),
		dir("d/", 0o755, 0, 0), file("d/x", 0o644, 0, 0, "x"),
		dir("d2/", 0o755, 0, 0), file("d2/y", 0o644, 0, 0, "y"),
	)
	unpack("lower2",
		file(".wh.a", 0, 0, 0, ""),
		dir("d/", 0o755, 0, 0), file("d/.wh..wh..opq", 0, 0, 0, ""), file("d/new", 0o644, 0, 0, "new"),
	)
	mount := func(target, lowers, upper, work string) {
		t.Helper()
		opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", lowers, p(upper), p(work))
		if err := unix.Mount("overlay", p(target), "overlay", 0, opts); err != nil {
			t.Skipf("skipping: cannot mount overlay here: %v", err)
		}
		t.Cleanup(func() {
			if err := unix.Unmount(p(target), unix.MNT_DETACH); err != nil {
				t.Errorf("unmount %s: %v", target, err)
			}
		})
	}
	mount("merged", p("lower2")+":"+p("lower1"), "upper", "work")

	exists := func(root, name string) bool {
		_, err := os.Lstat(filepath.Join(p(root), name))
		return err == nil
	}
	for name, want := range map[string]bool{"a": false, "keep": true, "d/x": false, "d/new": true, "d2/y": true, ".wh.a": false} {
		if got := exists("merged", name); got != want {
			t.Errorf("merged: %s exists = %v, want %v", name, got, want)
		}
	}

	// What a container does: delete a file, replace a directory, add a file.
	if err := os.Remove(p("merged/keep")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(p("merged/d2")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(p("merged/d2"), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p("merged/d2/z"), []byte("z"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p("merged/added"), []byte("added"), 0o600); err != nil {
		t.Fatal(err)
	}

	out, _ := diffTar(t, p("upper"))
	var got []string
	for _, e := range readTar(t, out) {
		got = append(got, fmt.Sprintf("%c %s %q", e.hdr.Typeflag, e.hdr.Name, e.body))
	}
	want := []string{
		`0 .wh.keep ""`,
		`0 added "added"`,
		`5 d2/ ""`,
		`0 d2/.wh..wh..opq ""`,
		`0 d2/z "z"`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Diff of the upper:\n got  %q\n want %q", got, want)
	}

	// The diff, unpacked as a third layer, gives the same view.
	if _, err := Unpack(ctx, bytes.NewReader(out), p("lower3")); err != nil {
		t.Fatalf("Unpack diff: %v", err)
	}
	mount("merged2", p("lower3")+":"+p("lower2")+":"+p("lower1"), "upper2", "work2")
	for name, want := range map[string]bool{"a": false, "keep": false, "d/new": true, "d2/y": false, "d2/z": true, "added": true} {
		if got := exists("merged2", name); got != want {
			t.Errorf("merged2: %s exists = %v, want %v", name, got, want)
		}
	}
}

func FuzzUnpack(f *testing.F) {
	requireRoot(f)
	f.Add(makeTar(f, file("ok", 0o644, 0, 0, "hello")))
	f.Add(makeTar(f, dir("d/", 0o755, 0, 0), file("d/.wh..wh..opq", 0, 0, 0, ""), file(".wh.x", 0, 0, 0, "")))
	f.Add(makeTar(f, symlink("escape", "/"), file("escape/pwned", 0o644, 0, 0, "x")))
	f.Add(makeTar(f, symlink("up", ".."), hardlink("l", "up/x")))
	f.Add(makeTar(f, file("../x", 0o644, 0, 0, "x")))
	f.Add([]byte{0x1f, 0x8b, 0x08})
	f.Fuzz(func(t *testing.T, data []byte) {
		parent := t.TempDir()
		root := filepath.Join(parent, "root")
		Unpack(context.Background(), bytes.NewReader(data), root)
		assertOnlyRoot(t, parent)
	})
}
