package build

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

type copySpec struct {
	srcs         []string
	dest         string
	from         string
	chown, chmod string
	add          bool
}

func (bc *buildCtx) loadIgnore() error {
	f, err := os.Open(filepath.Join(bc.opts.ContextDir, ".dockerignore"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("build: .dockerignore: %w", err)
	}
	defer f.Close()
	pats, err := ignorefile.ReadAll(f)
	if err != nil {
		return fmt.Errorf("build: .dockerignore: %v: %w", err, ErrInvalid)
	}
	pm, err := patternmatcher.New(pats)
	if err != nil {
		return fmt.Errorf("build: .dockerignore: %v: %w", err, ErrInvalid)
	}
	bc.ignore = pm
	return nil
}

// ignored reports whether rel (slash path relative to the context) is
// excluded by .dockerignore.
func (bc *buildCtx) ignored(rel string) bool {
	if bc.ignore == nil || rel == "." || rel == "" {
		return false
	}
	m, err := bc.ignore.MatchesOrParentMatches(rel)
	return err == nil && m
}

func isURL(s string) bool {
	for _, p := range []string{"http://", "https://", "git://", "git@", "ssh://"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// stageCopy lays out under upper what COPY/ADD cs writes and returns a
// digest of that content and metadata (the cache key part).
func (bc *buildCtx) stageCopy(ctx context.Context, ss *stageState, cs copySpec, upper string, owners map[string]owner) (string, error) {
	root := bc.opts.ContextDir
	fromContext := true
	if cs.from != "" {
		fromContext = false
		var err error
		if root, err = bc.sourceRoot(ctx, cs.from); err != nil {
			return "", err
		}
	}
	own := owner{}
	if cs.chown != "" {
		var err error
		if own, err = bc.resolveOwner(ctx, ss, cs.chown); err != nil {
			return "", err
		}
	}
	var mode *os.FileMode
	if cs.chmod != "" {
		m, err := strconv.ParseUint(cs.chmod, 8, 32)
		if err != nil || m > 0o7777 {
			return "", fmt.Errorf("--chmod=%s: want an octal mode: %w", cs.chmod, ErrInvalid)
		}
		fm := os.FileMode(m & 0o777)
		mode = &fm
	}
	// Resolve sources.
	var matches []string // slash paths relative to root
	for _, src := range cs.srcs {
		if isURL(src) {
			if cs.add {
				return "", fmt.Errorf("ADD %s: this machine cannot fetch remote URLs (no network access to registries or the internet); download the file into the build context and COPY it: %w", src, ErrUnavailable)
			}
			return "", fmt.Errorf("COPY %s: COPY does not take URLs: %w", src, ErrInvalid)
		}
		rel := strings.TrimPrefix(path.Clean("/"+filepath.ToSlash(src)), "/")
		if rel == "" {
			rel = "."
		}
		if strings.ContainsAny(rel, "*?[") {
			found, err := filepath.Glob(filepath.Join(root, filepath.FromSlash(rel)))
			if err != nil {
				return "", fmt.Errorf("source %q: %v: %w", src, err, ErrInvalid)
			}
			sort.Strings(found)
			for _, f := range found {
				r, _ := filepath.Rel(root, f)
				r = filepath.ToSlash(r)
				if fromContext && bc.ignored(r) {
					continue
				}
				matches = append(matches, r)
			}
			continue
		}
		if _, err := os.Lstat(filepath.Join(root, filepath.FromSlash(rel))); err != nil || (fromContext && bc.ignored(rel)) {
			where := "build context"
			if !fromContext {
				where = "--from=" + cs.from
			}
			return "", fmt.Errorf("%q not found in %s or excluded by .dockerignore: %w", src, where, ErrNotFound)
		}
		matches = append(matches, rel)
	}
	if len(matches) == 0 {
		return "", fmt.Errorf("no source files were specified (globs %q matched nothing): %w", cs.srcs, ErrNotFound)
	}
	dest := cs.dest
	if !path.IsAbs(dest) {
		dest = path.Join("/", ss.st.Image.Config.WorkingDir, dest) + map[bool]string{true: "/"}[strings.HasSuffix(dest, "/")]
	}
	destIsDir := strings.HasSuffix(dest, "/") || strings.HasSuffix(cs.dest, "/.") || len(matches) > 1 || len(cs.srcs) > 1
	dest = strings.Trim(path.Clean(dest), "/")
	if !destIsDir && dest != "" {
		fi, err := os.Lstat(filepath.Join(root, filepath.FromSlash(matches[0])))
		if err == nil && !fi.IsDir() {
			idx, err := bc.index(ctx, ss)
			if err != nil {
				return "", err
			}
			destIsDir = idx.isDir(dest)
		}
	}
	if dest == "" {
		destIsDir = true
	}
	parent := dest
	if !destIsDir {
		parent = path.Dir(dest)
	}
	if parent != "." && parent != "" {
		if err := mkdirAll(upper, parent, owners); err != nil {
			return "", err
		}
	}
	for _, m := range matches {
		src := filepath.Join(root, filepath.FromSlash(m))
		fi, err := os.Lstat(src)
		if err != nil {
			return "", err
		}
		switch {
		case fi.IsDir():
			if dest != "" {
				if err := mkdirAll(upper, dest, owners); err != nil {
					return "", err
				}
			}
			err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
				if err != nil {
					return err
				}
				r, _ := filepath.Rel(src, p)
				if r == "." {
					return nil
				}
				if fromContext {
					cr, _ := filepath.Rel(root, p)
					if bc.ignored(filepath.ToSlash(cr)) {
						if d.IsDir() && !bc.ignore.Exclusions() {
							return filepath.SkipDir
						}
						return nil
					}
				}
				return copyEntry(p, upper, path.Join(dest, filepath.ToSlash(r)), own, mode, owners)
			})
			if err != nil {
				return "", err
			}
		case cs.add && fi.Mode().IsRegular() && isArchive(src):
			if dest != "" {
				if err := mkdirAll(upper, dest, owners); err != nil {
					return "", err
				}
			}
			f, err := os.Open(src)
			if err != nil {
				return "", err
			}
			err = extractArchive(f, upper, dest, owners, false)
			f.Close()
			if err != nil {
				return "", fmt.Errorf("ADD %s: %w", m, err)
			}
		default:
			target := dest
			if destIsDir {
				target = path.Join(dest, path.Base(m))
			}
			if err := copyEntry(src, upper, target, own, mode, owners); err != nil {
				return "", err
			}
		}
	}
	return hashTree(upper, owners)
}

// copyEntry copies one file, directory or symlink to rel under upper.
func copyEntry(src, upper, rel string, own owner, mode *os.FileMode, owners map[string]owner) error {
	fi, err := os.Lstat(src)
	if err != nil {
		return err
	}
	dst := filepath.Join(upper, filepath.FromSlash(rel))
	switch {
	case fi.IsDir():
		perm := fi.Mode().Perm()
		if mode != nil {
			perm = *mode
		}
		if err := os.Mkdir(dst, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		if err := os.Chmod(dst, perm|fi.Mode()&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky)); err != nil {
			return err
		}
	case fi.Mode()&os.ModeSymlink != 0:
		t, err := os.Readlink(src)
		if err != nil {
			return err
		}
		_ = os.Remove(dst)
		if err := os.Symlink(t, dst); err != nil {
			return err
		}
	case fi.Mode().IsRegular():
		perm := fi.Mode().Perm()
		if mode != nil {
			perm = *mode
		}
		in, err := os.Open(src)
		if err != nil {
			return err
		}
		_ = os.Remove(dst)
		out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			in.Close()
			return err
		}
		_, err = io.Copy(out, in)
		in.Close()
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
		if err := os.Chmod(dst, perm|fi.Mode()&(os.ModeSetuid|os.ModeSetgid|os.ModeSticky)); err != nil {
			return err
		}
		if err := os.Chtimes(dst, fi.ModTime(), fi.ModTime()); err != nil {
			return err
		}
	default:
		return nil // devices, sockets, fifos: not copied
	}
	owners[strings.Trim(rel, "/")] = own
	return nil
}

// hashTree digests paths, modes, owners, link targets and contents (not
// times) of the tree under dir.
func hashTree(dir string, owners map[string]owner) (string, error) {
	h := sha256.New()
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		o := owners[rel]
		fmt.Fprintf(h, "%s\x00%o\x00%d:%d\x00", rel, fi.Mode(), o.uid, o.gid)
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			t, _ := os.Readlink(p)
			fmt.Fprintf(h, "->%s\x00", t)
		case fi.Mode().IsRegular():
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "%d\x00", fi.Size())
			_, err = io.Copy(h, f)
			f.Close()
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%x", h.Sum(nil)), nil
}

// sourceRoot materializes the rootfs of a stage or image for COPY --from.
func (bc *buildCtx) sourceRoot(ctx context.Context, from string) (string, error) {
	if ss, ok := bc.stages[strings.ToLower(from)]; ok {
		if ss.rootDir == "" {
			dir, err := bc.materialize(ctx, ss.st)
			if err != nil {
				return "", fmt.Errorf("--from=%s: %w", from, err)
			}
			ss.rootDir = dir
		}
		return ss.rootDir, nil
	}
	st, _, err := bc.b.loadImage(ctx, from, bc.platform)
	if err != nil {
		return "", fmt.Errorf("--from=%s: no such stage, and %w", from, err)
	}
	ss := &stageState{st: st}
	dir, err := bc.materialize(ctx, st)
	if err != nil {
		return "", fmt.Errorf("--from=%s: %w", from, err)
	}
	ss.rootDir = dir
	bc.stages[strings.ToLower(from)] = ss
	return dir, nil
}

// materialize extracts st's layers into a new directory, applying
// whiteouts.
func (bc *buildCtx) materialize(ctx context.Context, st *imageState) (string, error) {
	dir, err := os.MkdirTemp(bc.tmp, "rootfs-")
	if err != nil {
		return "", err
	}
	for _, l := range st.Layers {
		r, done, err := bc.b.openLayer(ctx, l)
		if err != nil {
			return "", err
		}
		err = extractArchive(r, dir, "", nil, true)
		done()
		if err != nil {
			return "", fmt.Errorf("layer %s: %w", l.Digest, err)
		}
	}
	return dir, nil
}

func isArchive(p string) bool {
	f, err := os.Open(p)
	if err != nil {
		return false
	}
	defer f.Close()
	r, err := decompress(bufio.NewReader(f))
	if err != nil {
		return false
	}
	_, err = tar.NewReader(r).Next()
	return err == nil
}

func decompress(br *bufio.Reader) (io.Reader, error) {
	magic, _ := br.Peek(3)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		return gzip.NewReader(br)
	case bytes.HasPrefix(magic, []byte("BZh")):
		return bzip2.NewReader(br), nil
	}
	return br, nil
}

// extractArchive unpacks a (possibly compressed) tar into root/prefix.
// With layer set, OCI whiteouts delete; otherwise they are plain files.
// owners, if non-nil, records each entry's owner from the archive.
func extractArchive(r io.Reader, root, prefix string, owners map[string]owner, isLayer bool) error {
	dr, err := decompress(bufio.NewReader(r))
	if err != nil {
		return fmt.Errorf("%v: %w", err, ErrInvalid)
	}
	tr := tar.NewReader(dr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%v: %w", err, ErrInvalid)
		}
		name := strings.Trim(path.Clean("/"+hdr.Name), "/")
		if name == "" {
			continue
		}
		rel := strings.Trim(path.Join(prefix, name), "/")
		parentRel, base := path.Split(rel)
		parent, err := resolveIn(root, strings.TrimSuffix(parentRel, "/"))
		if err != nil {
			return err
		}
		if err := os.MkdirAll(parent, 0o755); err != nil {
			return err
		}
		dst := filepath.Join(parent, base)
		if isLayer && strings.HasPrefix(base, ".wh.") {
			if base == ".wh..wh..opq" {
				ents, _ := os.ReadDir(parent)
				for _, e := range ents {
					os.RemoveAll(filepath.Join(parent, e.Name()))
				}
			} else {
				os.RemoveAll(filepath.Join(parent, strings.TrimPrefix(base, ".wh.")))
			}
			continue
		}
		perm := os.FileMode(hdr.Mode) & 0o7777
		switch hdr.Typeflag {
		case tar.TypeDir:
			if fi, err := os.Lstat(dst); err == nil && !fi.IsDir() {
				os.RemoveAll(dst)
			}
			if err := os.Mkdir(dst, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
			os.Chmod(dst, perm)
		case tar.TypeReg:
			os.RemoveAll(dst)
			f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			f.Close()
			if err != nil {
				return err
			}
			os.Chmod(dst, perm)
			os.Chtimes(dst, hdr.ModTime, hdr.ModTime)
		case tar.TypeSymlink:
			os.RemoveAll(dst)
			if err := os.Symlink(hdr.Linkname, dst); err != nil {
				return err
			}
		case tar.TypeLink:
			target, err := resolveIn(root, strings.Trim(path.Join(prefix, path.Clean("/"+hdr.Linkname)), "/"))
			if err != nil {
				return err
			}
			os.RemoveAll(dst)
			if err := os.Link(target, dst); err != nil {
				return err
			}
		default:
			continue // devices and fifos are not needed to copy files
		}
		if owners != nil {
			owners[rel] = owner{hdr.Uid, hdr.Gid}
		}
	}
}

// resolveIn resolves rel inside root, following symlinks as if root were
// "/", so that nothing is ever written outside root.
func resolveIn(root, rel string) (string, error) {
	cur := ""
	parts := strings.Split(rel, "/")
	for hops := 0; len(parts) > 0; {
		part := parts[0]
		parts = parts[1:]
		if part == "" || part == "." {
			continue
		}
		if part == ".." {
			cur = strings.Trim(path.Dir("/"+cur), "/")
			continue
		}
		next := path.Join(cur, part)
		fi, err := os.Lstat(filepath.Join(root, next))
		if err == nil && fi.Mode()&os.ModeSymlink != 0 {
			if hops++; hops > 40 {
				return "", fmt.Errorf("%s: too many levels of symbolic links: %w", rel, ErrInvalid)
			}
			t, err := os.Readlink(filepath.Join(root, next))
			if err != nil {
				return "", err
			}
			if path.IsAbs(t) {
				cur = ""
			}
			parts = append(strings.Split(t, "/"), parts...)
			continue
		}
		cur = next
	}
	return filepath.Join(root, filepath.FromSlash(cur)), nil
}

// resolveOwner parses --chown=user[:group], looking names up in the
// stage's /etc/passwd and /etc/group.
func (bc *buildCtx) resolveOwner(ctx context.Context, ss *stageState, spec string) (owner, error) {
	u, g, hasGroup := strings.Cut(spec, ":")
	var o owner
	var rootDir string
	lookup := func(file, name string, field int) (int, error) {
		if n, err := strconv.Atoi(name); err == nil {
			return n, nil
		}
		if rootDir == "" {
			d, err := bc.materialize(ctx, ss.st)
			if err != nil {
				return 0, err
			}
			rootDir = d
		}
		p, err := resolveIn(rootDir, file)
		if err != nil {
			return 0, err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return 0, fmt.Errorf("--chown=%s: cannot look up %q: no /%s in the image: %w", spec, name, file, ErrNotFound)
		}
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Split(line, ":")
			if len(f) > field && f[0] == name {
				return strconv.Atoi(f[field])
			}
		}
		return 0, fmt.Errorf("--chown=%s: no %q in /%s: %w", spec, name, file, ErrNotFound)
	}
	var err error
	if o.uid, err = lookup("etc/passwd", u, 2); err != nil {
		return o, err
	}
	switch {
	case hasGroup:
		o.gid, err = lookup("etc/group", g, 2)
	case isNumeric(u):
		o.gid = o.uid
	default:
		o.gid, err = lookup("etc/passwd", u, 3)
	}
	return o, err
}

func isNumeric(s string) bool {
	_, err := strconv.Atoi(s)
	return err == nil
}
