package layer

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// Unpack reads a layer tarball from r, plain or compressed with gzip or zstd
// (detected from the first bytes), and writes its entries under dir, creating
// dir if needed. It returns the layer's diffID: the sha256 of the
// uncompressed tarball.
//
// File modes, ownership, modification times, symlinks, hardlinks (within the
// layer), device nodes, fifos and xattrs are reproduced; the caller must be
// root for ownership and device nodes. OCI whiteouts become overlayfs ones: an
// entry ".wh.NAME" becomes a 0:0 character device NAME, and ".wh..wh..opq"
// marks its directory opaque with the xattr trusted.overlay.opaque=y.
//
// Entries never escape dir: names with ".." components are refused, and no
// parent directory is ever resolved through a symlink (a layer that writes
// through one of its own symlinks is refused). Such layers, malformed or
// truncated tarballs and unsupported entry types give errors wrapping
// [ErrInvalid]. On error dir holds a partial result; the caller removes it.
func Unpack(ctx context.Context, r io.Reader, dir string) (diffID digest.Digest, err error) {
	plain, closeDecompressor, err := decompress(bufio.NewReaderSize(r, 64<<10))
	if err != nil {
		return "", err
	}
	defer closeDecompressor()

	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("unpack layer: %w", err)
	}
	u, err := newUnpacker(dir)
	if err != nil {
		return "", err
	}
	defer u.close()

	digester := digest.SHA256.Digester()
	tail := &tailReader{r: io.TeeReader(plain, digester.Hash())}
	tr := tar.NewReader(tail)
	for {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			if !tail.endOfArchive() {
				return "", fmt.Errorf("unpack layer: %w: truncated tar (no end-of-archive marker)", ErrInvalid)
			}
			break
		}
		if err != nil {
			return "", fmt.Errorf("unpack layer: reading tar: %w: %v", ErrInvalid, err)
		}
		if err := u.entry(hdr, tr); err != nil {
			return "", fmt.Errorf("unpack layer: entry %q: %w", hdr.Name, err)
		}
	}
	// The diffID covers the whole stream, including the end-of-archive
	// blocks and any padding after them; this also lets gzip verify its
	// checksum.
	if _, err := io.Copy(io.Discard, io.TeeReader(plain, digester.Hash())); err != nil {
		return "", fmt.Errorf("unpack layer: reading trailer: %w: %v", ErrInvalid, err)
	}
	if err := u.finish(); err != nil {
		return "", fmt.Errorf("unpack layer: %w", err)
	}
	return digester.Digest(), nil
}

// tailReader remembers how much was read and the last two blocks, to tell
// a complete tar from one cut at a block boundary (which archive/tar takes
// as a normal end).
type tailReader struct {
	r    io.Reader
	n    int64
	tail []byte
}

func (t *tailReader) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	t.n += int64(n)
	t.tail = append(t.tail, p[:n]...)
	if len(t.tail) > 1024 {
		t.tail = append(t.tail[:0], t.tail[len(t.tail)-1024:]...)
	}
	return n, err
}

// endOfArchive reports whether the stream so far is whole blocks ending with
// the two zero blocks that close a tar.
func (t *tailReader) endOfArchive() bool {
	return t.n >= 1024 && t.n%512 == 0 && len(t.tail) == 1024 && bytes.Count(t.tail, []byte{0}) == 1024
}

var (
	magicGzip  = []byte{0x1f, 0x8b}
	magicZstd  = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicXz    = []byte{0xfd, '7', 'z', 'X', 'Z', 0x00}
	magicBzip2 = []byte("BZh")
)

// decompress returns the uncompressed stream of br.
func decompress(br *bufio.Reader) (io.Reader, func(), error) {
	head, err := br.Peek(6)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, nil, fmt.Errorf("unpack layer: %w", err)
	}
	switch {
	case bytes.HasPrefix(head, magicGzip):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("unpack layer: gzip: %w: %v", ErrInvalid, err)
		}
		return zr, func() { zr.Close() }, nil
	case bytes.HasPrefix(head, magicZstd):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, nil, fmt.Errorf("unpack layer: zstd: %w: %v", ErrInvalid, err)
		}
		return zr, zr.Close, nil
	case bytes.HasPrefix(head, magicXz), bytes.HasPrefix(head, magicBzip2):
		return nil, nil, fmt.Errorf("unpack layer: %w: xz and bzip2 compression are not supported by OCI layers", ErrInvalid)
	}
	return br, func() {}, nil
}

// cleanName turns a tar entry name into a path relative to the layer root
// ("" for the root itself), refusing anything that could climb out of it.
func cleanName(name string) (string, error) {
	if strings.IndexByte(name, 0) >= 0 {
		return "", fmt.Errorf("%w: NUL byte in path", ErrInvalid)
	}
	for _, c := range strings.Split(name, "/") {
		if c == ".." {
			return "", fmt.Errorf("%w: path %q climbs out of the layer with \"..\"", ErrInvalid, name)
		}
	}
	// Absolute names are taken relative to the layer root, like Docker.
	return strings.TrimPrefix(path.Clean("/"+name), "/"), nil
}

type unpacker struct {
	dir    string
	root   int                         // O_PATH fd of dir
	dirMod map[string][2]unix.Timespec // deferred directory times: atime, mtime
}

func newUnpacker(dir string) (*unpacker, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("unpack layer: open %s: %w", dir, err)
	}
	return &unpacker{dir: dir, root: fd, dirMod: map[string][2]unix.Timespec{}}, nil
}

func (u *unpacker) close() { unix.Close(u.root) }

// openDir opens the directory rel (relative to the root) for use as the
// parent of an entry, one component at a time and never following a symlink,
// so the result is always inside the root. Missing directories are created
// with mode 0755 when create is set, as tar files often omit parents.
// The caller closes the returned fd unless it is u.root.
func (u *unpacker) openDir(rel string, create bool) (int, error) {
	if rel == "" {
		return u.root, nil
	}
	cur := u.root
	for _, c := range strings.Split(rel, "/") {
		fd, err := unix.Openat(cur, c, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) && create {
			if err = unix.Mkdirat(cur, c, 0o755); err == nil || errors.Is(err, unix.EEXIST) {
				fd, err = unix.Openat(cur, c, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
			}
		}
		if err == nil {
			var st unix.Stat_t
			if err = unix.Fstat(fd, &st); err == nil && st.Mode&unix.S_IFMT != unix.S_IFDIR {
				err = unix.ENOTDIR
			}
			if err != nil {
				unix.Close(fd)
			}
		}
		if cur != u.root {
			unix.Close(cur)
		}
		if err != nil {
			if errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.ELOOP) {
				return -1, fmt.Errorf("%w: parent %q is not a directory (writing through a symlink is refused)", ErrInvalid, rel)
			}
			if errors.Is(err, unix.ENOENT) {
				return -1, fmt.Errorf("%w: %q does not exist", ErrInvalid, rel)
			}
			return -1, fmt.Errorf("open %q: %w", rel, err)
		}
		cur = fd
	}
	return cur, nil
}

func (u *unpacker) closeDir(fd int) {
	if fd != u.root {
		unix.Close(fd)
	}
}

// procPath names base inside the directory open as fd without resolving any
// symlink on the way (the final component is not followed by l* calls).
func procPath(fd int, base string) string {
	if base == "" {
		return fmt.Sprintf("/proc/self/fd/%d", fd)
	}
	return fmt.Sprintf("/proc/self/fd/%d/%s", fd, base)
}

func (u *unpacker) entry(hdr *tar.Header, r io.Reader) error {
	rel, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader:
		return nil
	case tar.TypeReg, tar.TypeRegA, tar.TypeDir, tar.TypeSymlink, tar.TypeLink,
		tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
	default:
		return fmt.Errorf("%w: unsupported tar entry type %q", ErrInvalid, hdr.Typeflag)
	}
	if rel == "" {
		if hdr.Typeflag != tar.TypeDir {
			return fmt.Errorf("%w: the layer root must be a directory", ErrInvalid)
		}
		return u.root0(hdr)
	}

	parent, base := path.Split(rel)
	parent = strings.TrimSuffix(parent, "/")
	pfd, err := u.openDir(parent, true)
	if err != nil {
		return err
	}
	defer u.closeDir(pfd)

	if strings.HasPrefix(base, whiteoutPrefix) {
		return u.whiteout(pfd, parent, base, hdr)
	}
	if err := u.removeExisting(pfd, rel, base, hdr.Typeflag == tar.TypeDir); err != nil {
		return err
	}

	mode := uint32(hdr.Mode) & 0o7777
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := unix.Mkdirat(pfd, base, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
			return err
		}
	case tar.TypeReg, tar.TypeRegA:
		fd, err := unix.Openat(pfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return err
		}
		f := os.NewFile(uintptr(fd), rel)
		n, err := io.Copy(f, r)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return fmt.Errorf("%w: truncated file content", ErrInvalid)
			}
			return err
		}
		if n != hdr.Size {
			return fmt.Errorf("%w: file content is %d bytes, header says %d", ErrInvalid, n, hdr.Size)
		}
	case tar.TypeSymlink:
		if hdr.Linkname == "" {
			return fmt.Errorf("%w: symlink with empty target", ErrInvalid)
		}
		if err := unix.Symlinkat(hdr.Linkname, pfd, base); err != nil {
			return err
		}
	case tar.TypeLink:
		return u.hardlink(pfd, rel, base, hdr.Linkname)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		typ := map[byte]uint32{tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[hdr.Typeflag]
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknodat(pfd, base, typ|mode&0o777, int(dev)); err != nil {
			return err
		}
	}
	return u.meta(pfd, rel, base, hdr)
}

// removeExisting makes room for a new entry at base: a later entry with the
// same name replaces an earlier one, except that directories merge.
func (u *unpacker) removeExisting(pfd int, rel, base string, isDir bool) error {
	var st unix.Stat_t
	err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return unix.Unlinkat(pfd, base, 0)
	}
	if isDir {
		return nil
	}
	delete(u.dirMod, rel)
	return os.RemoveAll(procPath(pfd, base))
}

func (u *unpacker) whiteout(pfd int, parent, base string, hdr *tar.Header) error {
	if base == opaqueWhiteout {
		return unix.Setxattr(procPath(pfd, ""), overlayOpaqueXattr, []byte("y"), 0)
	}
	if strings.HasPrefix(base, whiteoutMetaPrefix) {
		return nil // other AUFS metadata (.wh..wh.plnk, ...) has no overlayfs meaning
	}
	name := strings.TrimPrefix(base, whiteoutPrefix)
	if name == "" || name == "." || name == ".." {
		return fmt.Errorf("%w: bad whiteout name", ErrInvalid)
	}
	if err := u.removeExisting(pfd, path.Join(parent, name), name, false); err != nil {
		return err
	}
	if err := unix.Mknodat(pfd, name, unix.S_IFCHR, int(unix.Mkdev(0, 0))); err != nil {
		return err
	}
	// Keep the whiteout's time so that Diff gives back the same entry.
	ts := times(hdr)
	return unix.UtimesNanoAt(pfd, name, ts[:], unix.AT_SYMLINK_NOFOLLOW)
}

func (u *unpacker) hardlink(pfd int, rel, base, linkname string) error {
	target, err := cleanName(linkname)
	if err != nil {
		return err
	}
	if target == "" || target == rel {
		return fmt.Errorf("%w: bad hardlink target %q", ErrInvalid, linkname)
	}
	tparent, tbase := path.Split(target)
	tfd, err := u.openDir(strings.TrimSuffix(tparent, "/"), false)
	if err != nil {
		return fmt.Errorf("hardlink target: %w", err)
	}
	defer u.closeDir(tfd)
	if err := unix.Linkat(tfd, tbase, pfd, base, 0); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("%w: hardlink target %q is not in the layer", ErrInvalid, linkname)
		}
		return fmt.Errorf("hardlink to %q: %w", linkname, err)
	}
	return nil
}

// meta applies ownership, mode, xattrs and times, in that order: chown
// clears setuid bits and security.capability.
func (u *unpacker) meta(pfd int, rel, base string, hdr *tar.Header) error {
	if err := unix.Fchownat(pfd, base, hdr.Uid, hdr.Gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	if hdr.Typeflag != tar.TypeSymlink {
		if err := unix.Fchmodat(pfd, base, uint32(hdr.Mode)&0o7777, 0); err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	if err := setXattrs(procPath(pfd, base), hdr); err != nil {
		return err
	}
	ts := times(hdr)
	if hdr.Typeflag == tar.TypeDir {
		u.dirMod[rel] = ts // creating children would change it again
		return nil
	}
	if err := unix.UtimesNanoAt(pfd, base, ts[:], unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("set times: %w", err)
	}
	return nil
}

// root0 applies the metadata of an entry naming the layer root itself.
func (u *unpacker) root0(hdr *tar.Header) error {
	if err := os.Lchown(u.dir, hdr.Uid, hdr.Gid); err != nil {
		return err
	}
	if err := unix.Chmod(u.dir, uint32(hdr.Mode)&0o7777); err != nil {
		return err
	}
	if err := setXattrs(u.dir, hdr); err != nil {
		return err
	}
	u.dirMod[""] = times(hdr)
	return nil
}

func times(hdr *tar.Header) [2]unix.Timespec {
	mtime := hdr.ModTime
	atime := hdr.AccessTime
	if atime.IsZero() {
		atime = mtime
	}
	return [2]unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
}

func setXattrs(p string, hdr *tar.Header) error {
	keys := make([]string, 0, len(hdr.PAXRecords))
	for k := range hdr.PAXRecords {
		if name, ok := strings.CutPrefix(k, paxXattrPrefix); ok && !isOverlayXattr(name) {
			keys = append(keys, name)
		}
	}
	sort.Strings(keys)
	for _, name := range keys {
		if err := unix.Lsetxattr(p, name, []byte(hdr.PAXRecords[paxXattrPrefix+name]), 0); err != nil {
			return fmt.Errorf("set xattr %s: %w", name, err)
		}
	}
	return nil
}

// finish sets directory times, now that nothing more is created in them.
func (u *unpacker) finish() error {
	rels := make([]string, 0, len(u.dirMod))
	for rel := range u.dirMod {
		rels = append(rels, rel)
	}
	sort.Strings(rels)
	for _, rel := range rels {
		ts := u.dirMod[rel]
		if rel == "" {
			if err := unix.UtimesNano(u.dir, ts[:]); err != nil {
				return err
			}
			continue
		}
		parent, base := path.Split(rel)
		pfd, err := u.openDir(strings.TrimSuffix(parent, "/"), false)
		if err != nil {
			continue // replaced by a later entry
		}
		var st unix.Stat_t
		if unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW) == nil && st.Mode&unix.S_IFMT == unix.S_IFDIR {
			err = unix.UtimesNanoAt(pfd, base, ts[:], unix.AT_SYMLINK_NOFOLLOW)
		}
		u.closeDir(pfd)
		if err != nil {
			return fmt.Errorf("set times of %q: %w", rel, err)
		}
	}
	return nil
}
