package layer

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// Epoch is the Unix epoch, the usual time for [WithSourceDateEpoch] when
// the caller has none of its own (BuildKit's SOURCE_DATE_EPOCH=0).
var Epoch = time.Unix(0, 0).UTC()

// DiffOption adjusts [Diff].
type DiffOption func(*diffOptions)

type diffOptions struct {
	clamp time.Time
}

// WithSourceDateEpoch clamps modification times: entries newer than t get
// t, like Docker's and BuildKit's SOURCE_DATE_EPOCH, so that rebuilding the
// same content at another time gives the same layer digest.
func WithSourceDateEpoch(t time.Time) DiffOption {
	return func(o *diffOptions) { o.clamp = t }
}

// Diff writes to w, uncompressed, the layer tarball of the overlayfs upper
// directory upper (or of any directory: a rootfs gives a full layer) and
// returns its diffID. Overlayfs whiteouts become OCI ones: a 0:0 character
// device NAME becomes an empty file ".wh.NAME", and an opaque directory
// (trusted.overlay.opaque=y) is followed by an empty ".wh..wh..opq" in it.
//
// The output is deterministic: entries in lexical walk order (parents before
// children), times to the second (clamped with [WithSourceDateEpoch]), no
// user or group names, uid/gid and xattrs from the files (overlayfs's own
// xattrs excepted), hardlinks within upper as link entries to the first path
// in that order, and PAX headers only where USTAR cannot hold a value.
// Sockets are skipped. Directories using overlayfs redirect_dir or metacopy
// cannot be expressed as a layer and give an error.
func Diff(ctx context.Context, upper string, w io.Writer, opts ...DiffOption) (diffID digest.Digest, err error) {
	var o diffOptions
	for _, opt := range opts {
		opt(&o)
	}
	digester := digest.SHA256.Digester()
	tw := tar.NewWriter(io.MultiWriter(w, digester.Hash()))
	links := map[[2]uint64]string{}

	err = filepath.WalkDir(upper, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(upper, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		rel = filepath.ToSlash(rel)
		return diffEntry(tw, p, rel, &o, links)
	})
	if err != nil {
		return "", fmt.Errorf("diff %s: %w", upper, err)
	}
	if err := tw.Close(); err != nil {
		return "", fmt.Errorf("diff %s: %w", upper, err)
	}
	return digester.Digest(), nil
}

func diffEntry(tw *tar.Writer, p, rel string, o *diffOptions, links map[[2]uint64]string) error {
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return err
	}
	mtime := time.Unix(st.Mtim.Sec, 0).UTC()
	if !o.clamp.IsZero() && mtime.After(o.clamp) {
		mtime = o.clamp.Truncate(time.Second).UTC()
	}
	hdr := &tar.Header{
		Name:    rel,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: mtime,
	}
	opaque := false
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFCHR:
		if st.Rdev == 0 {
			dir, base := path.Split(rel)
			return tw.WriteHeader(whiteoutHeader(dir+whiteoutPrefix+base, mtime))
		}
		hdr.Typeflag = tar.TypeChar
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	case unix.S_IFBLK:
		hdr.Typeflag = tar.TypeBlock
		hdr.Devmajor, hdr.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	case unix.S_IFSOCK:
		return nil
	case unix.S_IFLNK:
		target, err := os.Readlink(p)
		if err != nil {
			return err
		}
		hdr.Typeflag, hdr.Linkname = tar.TypeSymlink, target
	case unix.S_IFDIR:
		hdr.Typeflag, hdr.Name = tar.TypeDir, rel+"/"
	case unix.S_IFREG:
		if st.Nlink > 1 {
			key := [2]uint64{st.Dev, st.Ino}
			if first, ok := links[key]; ok {
				hdr.Typeflag, hdr.Linkname = tar.TypeLink, first
				break
			}
			links[key] = rel
		}
		hdr.Typeflag, hdr.Size = tar.TypeReg, st.Size
	default:
		return fmt.Errorf("%s: unsupported file type %#o", rel, st.Mode&unix.S_IFMT)
	}

	xattrs, err := listXattrs(p)
	if err != nil {
		return err
	}
	for name, value := range xattrs {
		switch {
		case name == overlayOpaqueXattr || name == overlayUserOpaqueXattr:
			opaque = string(value) == "y"
		case strings.HasSuffix(name, ".overlay.redirect"), strings.HasSuffix(name, ".overlay.metacopy"):
			return fmt.Errorf("%s: overlayfs %s cannot be expressed in a layer", rel, name)
		case isOverlayXattr(name):
		default:
			if hdr.PAXRecords == nil {
				hdr.PAXRecords = map[string]string{}
			}
			hdr.PAXRecords[paxXattrPrefix+name] = string(value)
		}
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if hdr.Typeflag == tar.TypeReg && hdr.Size > 0 {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		n, err := io.Copy(tw, io.LimitReader(f, hdr.Size))
		f.Close()
		if err != nil {
			return err
		}
		if n != hdr.Size {
			return fmt.Errorf("%s: file shrank while being read", rel)
		}
	}
	if opaque {
		return tw.WriteHeader(whiteoutHeader(rel+"/"+opaqueWhiteout, mtime))
	}
	return nil
}

func whiteoutHeader(name string, mtime time.Time) *tar.Header {
	return &tar.Header{Typeflag: tar.TypeReg, Name: name, ModTime: mtime}
}

// listXattrs returns the extended attributes of p, not following symlinks.
func listXattrs(p string) (map[string][]byte, error) {
	size, err := unix.Llistxattr(p, nil)
	if errors.Is(err, unix.ENOTSUP) || size == 0 {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list xattrs of %s: %w", p, err)
	}
	buf := make([]byte, size)
	size, err = unix.Llistxattr(p, buf)
	if err != nil {
		return nil, fmt.Errorf("list xattrs of %s: %w", p, err)
	}
	names := strings.Split(strings.TrimSuffix(string(buf[:size]), "\x00"), "\x00")
	sort.Strings(names)
	out := make(map[string][]byte, len(names))
	for _, name := range names {
		if name == "" {
			continue
		}
		vsize, err := unix.Lgetxattr(p, name, nil)
		if err != nil {
			return nil, fmt.Errorf("get xattr %s of %s: %w", name, p, err)
		}
		value := make([]byte, vsize)
		if vsize > 0 {
			if vsize, err = unix.Lgetxattr(p, name, value); err != nil {
				return nil, fmt.Errorf("get xattr %s of %s: %w", name, p, err)
			}
		}
		out[name] = value[:vsize]
	}
	return out, nil
}
