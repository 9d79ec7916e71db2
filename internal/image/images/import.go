package images

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"skiff.dev/skiff/internal/image/content"
)

// Import makes a one-layer image from a root filesystem tarball (plain or
// compressed), like `docker import`, names it ref if given, and returns
// its ID. The tarball becomes the layer as it is.
func (s *Service) Import(ctx context.Context, r io.Reader, ref string) (string, error) {
	name := ""
	if ref != "" {
		var err error
		if name, err = normalize(ref); err != nil {
			return "", fmt.Errorf("import: %w", err)
		}
	}
	tmp, err := os.CreateTemp("", "skiff-import-*.tar")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if _, err := io.Copy(tmp, r); err != nil {
		return "", fmt.Errorf("import: reading the tarball: %w", err)
	}
	layer, err := tarball.LayerFromFile(tmp.Name())
	if err != nil {
		return "", fmt.Errorf("import: %v: %w", err, content.ErrInvalid)
	}
	if err := checkTar(layer); err != nil {
		return "", fmt.Errorf("import: not a root filesystem tarball: %v: %w", err, content.ErrInvalid)
	}
	img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: layer, History: v1.History{
		Created: v1.Time{Time: time.Now().UTC()}, CreatedBy: "skiff import", Comment: "Imported from tarball",
	}})
	if err != nil {
		return "", fmt.Errorf("import: %v: %w", err, content.ErrInvalid)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		return "", fmt.Errorf("import: %v: %w", err, content.ErrInvalid)
	}
	cfg = cfg.DeepCopy()
	cfg.Architecture, cfg.OS = runtime.GOARCH, "linux"
	cfg.Created = v1.Time{Time: time.Now().UTC()}
	if img, err = mutate.ConfigFile(img, cfg); err != nil {
		return "", fmt.Errorf("import: %w", err)
	}
	desc, err := s.importImage(ctx, img)
	if err != nil {
		return "", fmt.Errorf("import: %w", err)
	}
	if name != "" {
		if err := s.store.SetRef(ctx, name, desc); err != nil {
			return "", fmt.Errorf("import: %w", err)
		}
	}
	id, err := img.ConfigName()
	if err != nil {
		return "", err
	}
	return id.String(), nil
}

// checkTar reads the layer's uncompressed stream through to its end as a
// tar archive.
func checkTar(l v1.Layer) error {
	rc, err := l.Uncompressed()
	if err != nil {
		return err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		if _, err := tr.Next(); err == io.EOF {
			return nil
		} else if err != nil {
			return err
		}
	}
}
