package build

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"skiff.dev/skiff/internal/image/layer"
)

// owner is a uid/gid pair.
type owner struct{ uid, gid int }

// layerStep runs an instruction that may produce a layer.
func (bc *buildCtx) layerStep(ctx context.Context, ss *stageState, cmd instructions.Command, text string) error {
	stepDir, err := os.MkdirTemp(bc.tmp, "step-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stepDir)
	upper := filepath.Join(stepDir, "upper")
	if err := os.Mkdir(upper, 0o755); err != nil {
		return err
	}
	var (
		key       digest.Digest
		createdBy = text
		owners    map[string]owner // nil: keep the files' owners (RUN)
		produce   func() error     // fills upper on a cache miss
		empty     bool
	)
	switch c := cmd.(type) {
	case *instructions.WorkdirCommand:
		wd := c.Path
		if !path.IsAbs(wd) {
			wd = path.Join("/", ss.st.Image.Config.WorkingDir, wd)
		}
		wd = path.Clean(wd)
		ss.st.Image.Config.WorkingDir = wd
		createdBy = "WORKDIR " + wd
		key = chainKey(ss.key, createdBy)
		idx, err := bc.index(ctx, ss)
		if err != nil {
			return err
		}
		if wd == "/" || idx.isDir(wd) {
			empty = true
		} else {
			owners = map[string]owner{}
			produce = func() error { return mkdirAll(upper, wd, owners) }
		}
	case *instructions.CopyCommand:
		cs := copySpec{srcs: c.SourcePaths, dest: c.DestPath, from: c.From, chown: c.Chown, chmod: c.Chmod}
		if len(c.SourceContents) > 0 {
			return fmt.Errorf("COPY heredocs are not supported: %w", ErrInvalid)
		}
		owners = map[string]owner{}
		h, err := bc.stageCopy(ctx, ss, cs, upper, owners)
		if err != nil {
			return err
		}
		key = chainKey(ss.key, text, ss.argParts(), h)
		createdBy = text + " # buildkit"
	case *instructions.AddCommand:
		if len(c.SourceContents) > 0 {
			return fmt.Errorf("ADD heredocs are not supported: %w", ErrInvalid)
		}
		cs := copySpec{srcs: c.SourcePaths, dest: c.DestPath, chown: c.Chown, chmod: c.Chmod, add: true}
		owners = map[string]owner{}
		h, err := bc.stageCopy(ctx, ss, cs, upper, owners)
		if err != nil {
			return err
		}
		key = chainKey(ss.key, text, ss.argParts(), h)
		createdBy = text + " # buildkit"
	case *instructions.RunCommand:
		if bc.b.runner == nil {
			return fmt.Errorf("RUN needs the container engine: start `skiff engine` and build again (skiff build uses it when it answers), or remove RUN: %w", ErrUnavailable)
		}
		if len(c.Files) > 0 {
			return fmt.Errorf("RUN heredocs are not supported: %w", ErrInvalid)
		}
		argv := withShell(c.ShellDependantCmdLine, ss.shell())
		env := ss.runEnv()
		createdBy = "RUN " + strings.Join(argv, " ") + " # buildkit"
		key = chainKey(ss.key, text, strings.Join(argv, "\x01"), strings.Join(env, "\x01"), ss.st.Image.Config.User, ss.st.Image.Config.WorkingDir)
		produce = func() error {
			return bc.b.runner.Run(ctx, RunRequest{
				Layers:   ss.st.Layers,
				DiffIDs:  ss.st.Image.RootFS.DiffIDs,
				UpperDir: upper,
				Cmd:      argv,
				Env:      env,
				User:     ss.st.Image.Config.User,
				WorkDir:  ss.st.Image.Config.WorkingDir,
				Shell:    ss.shell(),
				Stdout:   bc.out,
				Stderr:   bc.out,
			})
		}
	}
	if hit := bc.cache.get(ctx, key); hit != nil {
		ss.st, ss.key = hit, key
		fmt.Fprintf(bc.out, " ---> Using cache\n ---> %s\n", shortID(digest.FromString(string(key))))
		return nil
	}
	if empty {
		bc.addHistory(ss, createdBy, true)
	} else {
		if produce != nil {
			if err := produce(); err != nil {
				return err
			}
		}
		desc, diffID, err := bc.writeLayer(ctx, upper, filepath.Join(stepDir, "layer.tar.gz"), owners)
		if err != nil {
			return err
		}
		ss.st.Layers = append(ss.st.Layers, desc)
		ss.st.Image.RootFS.DiffIDs = append(ss.st.Image.RootFS.DiffIDs, diffID)
		bc.addHistory(ss, createdBy, false)
	}
	ss.key = key
	bc.cache.put(key, ss.st)
	fmt.Fprintf(bc.out, " ---> %s\n", shortID(digest.FromString(string(key))))
	return nil
}

// mkdirAll creates rel (absolute in the image) under root, recording
// owners for each directory created.
func mkdirAll(root, rel string, owners map[string]owner) error {
	p := ""
	for _, part := range strings.Split(strings.Trim(path.Clean(rel), "/"), "/") {
		if part == "" {
			continue
		}
		p = path.Join(p, part)
		if err := os.Mkdir(filepath.Join(root, p), 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			return err
		}
		if _, ok := owners[p]; !ok {
			owners[p] = owner{}
		}
	}
	return nil
}

// writeLayer turns dir into a gzipped layer blob in the store. With owners
// non-nil every entry's uid/gid is set from it (0:0 when absent), which
// is how COPY's ownership rules are applied without needing root.
func (bc *buildCtx) writeLayer(ctx context.Context, dir, tmpFile string, owners map[string]owner) (ocispec.Descriptor, digest.Digest, error) {
	f, err := os.Create(tmpFile)
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	defer f.Close()
	zw, err := gzip.NewWriterLevel(f, gzip.DefaultCompression)
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	var opts []layer.DiffOption
	if bc.epoch != nil {
		opts = append(opts, layer.WithSourceDateEpoch(*bc.epoch))
	}
	var diffID digest.Digest
	if owners == nil {
		if diffID, err = layer.Diff(ctx, dir, zw, opts...); err != nil {
			return ocispec.Descriptor{}, "", err
		}
	} else {
		pr, pw := io.Pipe()
		go func() {
			_, err := layer.Diff(ctx, dir, pw, opts...)
			pw.CloseWithError(err)
		}()
		d := digest.SHA256.Digester()
		tw := tar.NewWriter(io.MultiWriter(zw, d.Hash()))
		tr := tar.NewReader(pr)
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				pr.CloseWithError(err)
				return ocispec.Descriptor{}, "", err
			}
			o := owners[strings.TrimSuffix(hdr.Name, "/")]
			hdr.Uid, hdr.Gid = o.uid, o.gid
			if err := tw.WriteHeader(hdr); err != nil {
				pr.CloseWithError(err)
				return ocispec.Descriptor{}, "", err
			}
			if _, err := io.Copy(tw, tr); err != nil {
				pr.CloseWithError(err)
				return ocispec.Descriptor{}, "", err
			}
		}
		if err := tw.Close(); err != nil {
			return ocispec.Descriptor{}, "", err
		}
		diffID = d.Digest()
	}
	if err := zw.Close(); err != nil {
		return ocispec.Descriptor{}, "", err
	}
	size, err := f.Seek(0, io.SeekCurrent)
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return ocispec.Descriptor{}, "", err
	}
	desc, err := bc.b.store.WriteBlob(ctx, f, size, "")
	if err != nil {
		return ocispec.Descriptor{}, "", fmt.Errorf("store layer: %w", err)
	}
	desc.MediaType = ocispec.MediaTypeImageLayerGzip
	desc.Size = size
	return desc, diffID, nil
}

// openLayer returns the uncompressed tar stream of a layer blob.
func (b *Builder) openLayer(ctx context.Context, desc ocispec.Descriptor) (io.Reader, func(), error) {
	rc, err := b.store.Open(ctx, desc.Digest)
	if err != nil {
		return nil, nil, err
	}
	br := bufio.NewReader(rc)
	magic, _ := br.Peek(2)
	if bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := gzip.NewReader(br)
		if err != nil {
			rc.Close()
			return nil, nil, err
		}
		return zr, func() { zr.Close(); rc.Close() }, nil
	}
	return br, func() { rc.Close() }, nil
}

// fsIndex knows which paths of a stage's rootfs are directories.
type fsIndex struct {
	layers int
	dirs   map[string]bool // path (no leading "/") → is a directory
}

func (x *fsIndex) isDir(p string) bool {
	return x.dirs[strings.Trim(path.Clean(p), "/")]
}

// index returns ss's index, reading layers added since last time.
func (bc *buildCtx) index(ctx context.Context, ss *stageState) (*fsIndex, error) {
	if ss.index == nil {
		ss.index = &fsIndex{dirs: map[string]bool{"": true}}
	}
	x := ss.index
	for ; x.layers < len(ss.st.Layers); x.layers++ {
		r, done, err := bc.b.openLayer(ctx, ss.st.Layers[x.layers])
		if err != nil {
			return nil, err
		}
		tr := tar.NewReader(r)
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				done()
				return nil, fmt.Errorf("layer %s: %w", ss.st.Layers[x.layers].Digest, err)
			}
			name := strings.Trim(path.Clean("/"+hdr.Name), "/")
			dir, base := path.Split(name)
			dir = strings.TrimSuffix(dir, "/")
			switch {
			case base == ".wh..wh..opq":
				for k := range x.dirs {
					if strings.HasPrefix(k, dir+"/") {
						delete(x.dirs, k)
					}
				}
			case strings.HasPrefix(base, ".wh."):
				gone := path.Join(dir, strings.TrimPrefix(base, ".wh."))
				for k := range x.dirs {
					if k == gone || strings.HasPrefix(k, gone+"/") {
						delete(x.dirs, k)
					}
				}
			default:
				x.dirs[name] = hdr.Typeflag == tar.TypeDir
			}
		}
		done()
	}
	return x, nil
}
