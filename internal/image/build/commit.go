package build

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// CommitOptions describe `docker commit`: a container's filesystem changes
// as one new layer on top of its image.
type CommitOptions struct {
	// Base is the container's image: its config and layers.
	Base       dockerspec.DockerOCIImage
	BaseLayers []ocispec.Descriptor
	// UpperDir holds the container's changes (an overlayfs upper directory).
	UpperDir string
	// Config, when set, is the new image's runtime config before Changes
	// apply (docker commit takes the container's).
	Config *dockerspec.DockerOCIImageConfig
	// Changes are Dockerfile instructions applied to the config: CMD,
	// ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME, WORKDIR,
	// STOPSIGNAL, HEALTHCHECK, SHELL, MAINTAINER.
	Changes []string
	Author  string
	Comment string
	// CreatedBy is the history entry's command (the container's).
	CreatedBy string
	// Tag names the image (optional).
	Tag string
}

// Commit writes a new image from a container's changes and returns its ID.
func (b *Builder) Commit(ctx context.Context, o CommitOptions) (digest.Digest, error) {
	var tag string
	if o.Tag != "" {
		n, err := NormalizeName(o.Tag)
		if err != nil {
			return "", fmt.Errorf("commit: tag %q: %w", o.Tag, err)
		}
		tag = n
	}
	tmp, err := os.MkdirTemp("", "skiff-commit-")
	if err != nil {
		return "", fmt.Errorf("commit: %w", err)
	}
	defer os.RemoveAll(tmp)
	bc := &buildCtx{b: b, tmp: tmp, out: io.Discard, cache: &cache{store: b.store, disabled: true}, stages: map[string]*stageState{}}
	st := (&imageState{Image: o.Base, Layers: o.BaseLayers}).clone()
	if o.Config != nil {
		st.Image.Config = *o.Config
	}
	ss := &stageState{st: st, args: map[string]string{}}
	lex := shell.NewLex('\\')
	for _, change := range o.Changes {
		cmd, err := parseTrigger(change)
		if err != nil {
			return "", fmt.Errorf("commit: --change %q: %w", change, err)
		}
		switch cmd.(type) {
		case *instructions.RunCommand, *instructions.CopyCommand, *instructions.AddCommand, *instructions.ArgCommand:
			return "", fmt.Errorf("commit: --change %q: %s is not allowed here: %w", change, strings.ToUpper(cmd.Name()), ErrInvalid)
		case *instructions.WorkdirCommand:
			c := cmd.(*instructions.WorkdirCommand)
			st.Image.Config.WorkingDir = filepath.Join("/", st.Image.Config.WorkingDir, c.Path)
			continue
		}
		if err := bc.dispatch(ctx, ss, cmd, lex); err != nil {
			return "", fmt.Errorf("commit: --change %q: %w", change, err)
		}
	}
	desc, diffID, err := bc.writeLayer(ctx, o.UpperDir, filepath.Join(tmp, "layer"), nil)
	if err != nil {
		return "", fmt.Errorf("commit: %w", err)
	}
	now := time.Now().UTC()
	st.Layers = append(st.Layers, desc)
	st.Image.RootFS.DiffIDs = append(st.Image.RootFS.DiffIDs, diffID)
	st.Image.Created = &now
	if o.Author != "" {
		st.Image.Author = o.Author
	}
	st.Image.History = append(st.Image.History, ocispec.History{Created: &now, CreatedBy: o.CreatedBy, Author: o.Author, Comment: o.Comment})
	id, mdesc, err := bc.commitImage(ctx, st)
	if err != nil {
		return "", err
	}
	if tag != "" {
		if err := b.store.SetRef(ctx, tag, mdesc); err != nil {
			return "", fmt.Errorf("commit: tag %s: %w", tag, err)
		}
	}
	return id, nil
}
