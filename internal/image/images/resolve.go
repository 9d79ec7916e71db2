package images

import (
	"context"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Resolved is what running a container needs from an image.
type Resolved struct {
	// ID is the config digest; Name the normalised name the image was
	// found by ("" when it was found by ID).
	ID   digest.Digest
	Name string
	// Config is the image's configuration (entrypoint, env, user...).
	Config dockerspec.DockerOCIImage
	// Layers are the compressed layer blobs and DiffIDs their uncompressed
	// digests, bottom first.
	Layers  []ocispec.Descriptor
	DiffIDs []digest.Digest
}

// Resolve finds the image nameOrID designates (as Inspect does) and returns
// its configuration and layers.
func (s *Service) Resolve(ctx context.Context, nameOrID string) (Resolved, error) {
	im, name, _, err := s.lookup(ctx, nameOrID)
	if err != nil {
		return Resolved{}, err
	}
	return Resolved{
		ID:      im.id,
		Name:    name,
		Config:  im.config,
		Layers:  im.man.Layers,
		DiffIDs: im.config.RootFS.DiffIDs,
	}, nil
}
