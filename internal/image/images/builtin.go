package images

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"os"
	"path"
	"runtime"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Builtin is an image a node makes from files of its own, with no
// registry involved (the mesh's sidecar proxy image): one uncompressed
// layer holding the files, an entrypoint and a user.
type Builtin struct {
	// Ref names the image ("skiff.dev/proxy:builtin").
	Ref string
	// Files are put in the image, with their parent directories.
	Files      []BuiltinFile
	Entrypoint []string
	User       string
}

// BuiltinFile is one file of a Builtin image.
type BuiltinFile struct {
	// Path is where the file is in the image ("/usr/local/bin/x").
	Path string
	// Source is the file on the host to copy.
	Source string
	// Mode is the file's permission bits (default 0755).
	Mode int64
}

// builtinEpoch is every timestamp of a builtin image, so that the same
// files always make the same image ID.
var builtinEpoch = time.Unix(0, 0).UTC()

// EnsureBuiltin makes the store hold b under b.Ref and returns its image
// ID. The image is reproducible, so calling it again with the same files
// writes nothing new and keeps the ID.
func (s *Service) EnsureBuiltin(ctx context.Context, b Builtin) (string, error) {
	name, err := normalize(b.Ref)
	if err != nil {
		return "", fmt.Errorf("builtin image: %w", err)
	}
	layerTar, err := builtinLayer(b.Files)
	if err != nil {
		return "", fmt.Errorf("builtin image %s: %w", b.Ref, err)
	}
	layer := static.NewLayer(layerTar, types.OCIUncompressedLayer)
	img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: layer, History: v1.History{
		Created: v1.Time{Time: builtinEpoch}, CreatedBy: "skiff builtin " + b.Ref,
	}})
	if err != nil {
		return "", fmt.Errorf("builtin image %s: %w", b.Ref, err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return "", fmt.Errorf("builtin image %s: %w", b.Ref, err)
	}
	cfg = cfg.DeepCopy()
	cfg.Architecture, cfg.OS = runtime.GOARCH, "linux"
	cfg.Created = v1.Time{Time: builtinEpoch}
	cfg.Config.Entrypoint = b.Entrypoint
	cfg.Config.User = b.User
	cfg.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return "", fmt.Errorf("builtin image %s: %w", b.Ref, err)
	}
	id, err := img.ConfigName()
	if err != nil {
		return "", err
	}
	if have, err := s.Resolve(ctx, name); err == nil && have.ID.String() == id.String() {
		return have.ID.String(), nil
	}
	desc, err := s.importImage(ctx, img)
	if err != nil {
		return "", fmt.Errorf("builtin image %s: %w", b.Ref, err)
	}
	if err := s.store.SetRef(ctx, name, desc); err != nil {
		return "", fmt.Errorf("builtin image %s: %w", b.Ref, err)
	}
	return id.String(), nil
}

// builtinLayer is the tar stream of files, parents first, owned by root,
// every timestamp at the epoch.
func builtinLayer(files []BuiltinFile) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dirs := map[string]bool{}
	for _, f := range files {
		p := strings.TrimPrefix(path.Clean("/"+f.Path), "/")
		if p == "" {
			return nil, fmt.Errorf("bad path %q", f.Path)
		}
		var parents []string
		for d := path.Dir(p); d != "." && !dirs[d]; d = path.Dir(d) {
			parents = append([]string{d}, parents...)
			dirs[d] = true
		}
		for _, d := range parents {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: builtinEpoch}); err != nil {
				return nil, err
			}
		}
		data, err := os.ReadFile(f.Source)
		if err != nil {
			return nil, err
		}
		mode := f.Mode
		if mode == 0 {
			mode = 0o755
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: p, Mode: mode, Size: int64(len(data)), ModTime: builtinEpoch}); err != nil {
			return nil, err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
