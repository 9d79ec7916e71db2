package engine

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"skiff.dev/skiff/internal/dockerapi"
	"skiff.dev/skiff/internal/errdefs"
	"skiff.dev/skiff/internal/image/build"
	"skiff.dev/skiff/internal/image/images"
	"skiff.dev/skiff/internal/image/layer"
	"skiff.dev/skiff/internal/image/snapshot"
)

// ImageInUse reports whether a container uses the image (rmi refuses to
// delete it without force). The images service calls it.
func (e *Engine) ImageInUse(imageID string) bool {
	for _, c := range e.ctrs.all() {
		c.mu.Lock()
		used := c.rec.ImageID == imageID
		c.mu.Unlock()
		if used {
			return true
		}
	}
	return false
}

// convert re-decodes v (shaped like a Docker API type) into out.
func convert(v, out any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, out)
}

// ImageList lists images; filters: reference, label, dangling.
func (e *Engine) ImageList(ctx context.Context, opts dockerapi.ImageListOptions) ([]image.Summary, error) {
	list, err := e.opts.Images.List(ctx)
	if err != nil {
		return nil, err
	}
	out := []image.Summary{}
	for _, s := range list {
		if !matchImage(s, opts.Filters) {
			continue
		}
		var is image.Summary
		if err := convert(s, &is); err != nil {
			return nil, err
		}
		is.Containers = -1
		out = append(out, is)
	}
	return out, nil
}

func matchImage(s images.Summary, f dockerapi.Filters) bool {
	for _, d := range f["dangling"] {
		if (d == "true" || d == "1") != (len(s.RepoTags) == 0) {
			return false
		}
	}
	if refs := f["reference"]; len(refs) > 0 {
		ok := false
		for _, r := range refs {
			for _, t := range s.RepoTags {
				if matchRef(t, r) {
					ok = true
				}
			}
		}
		if !ok {
			return false
		}
	}
	return matchLabels(s.Labels, f["label"])
}

// matchRef matches a tag against a reference filter like "busybox",
// "busybox:latest" or a glob "skiff.local/*".
func matchRef(tag, pattern string) bool {
	for _, cand := range []string{tag, strings.TrimPrefix(tag, "docker.io/library/"), strings.TrimPrefix(tag, "docker.io/")} {
		repo, _, _ := strings.Cut(cand, ":")
		for _, c := range []string{cand, repo} {
			if ok, _ := filepath.Match(pattern, c); ok {
				return true
			}
		}
	}
	return false
}

// ImageInspect returns one image.
func (e *Engine) ImageInspect(ctx context.Context, nameOrID string) (image.InspectResponse, error) {
	in, err := e.opts.Images.Inspect(ctx, nameOrID)
	if err != nil {
		return image.InspectResponse{}, noSuchImage(nameOrID, err)
	}
	var out image.InspectResponse
	return out, convert(in, &out)
}

func noSuchImage(ref string, err error) error {
	if errors.Is(err, errdefs.ErrNotFound) {
		return fmt.Errorf("No such image: %s: %w", ref, errdefs.ErrNotFound)
	}
	return err
}

// ImageHistory returns an image's steps, newest first.
func (e *Engine) ImageHistory(ctx context.Context, nameOrID string) ([]image.HistoryResponseItem, error) {
	h, err := e.opts.Images.History(ctx, nameOrID)
	if err != nil {
		return nil, noSuchImage(nameOrID, err)
	}
	var out []image.HistoryResponseItem
	return out, convert(h, &out)
}

// ImageTag names an image.
func (e *Engine) ImageTag(ctx context.Context, source, target string) error {
	if err := e.opts.Images.Tag(ctx, source, target); err != nil {
		return noSuchImage(source, err)
	}
	e.publish(events.ImageEventType, events.ActionTag, source, map[string]string{"name": target})
	return nil
}

// ImageRemove untags and deletes an image.
func (e *Engine) ImageRemove(ctx context.Context, nameOrID string, force, prune bool) ([]image.DeleteResponse, error) {
	rm, err := e.opts.Images.Remove(ctx, nameOrID, force)
	if err != nil {
		return nil, noSuchImage(nameOrID, err)
	}
	out := make([]image.DeleteResponse, 0, len(rm))
	for _, r := range rm {
		out = append(out, image.DeleteResponse{Untagged: r.Untagged, Deleted: r.Deleted})
		if r.Deleted != "" {
			e.publish(events.ImageEventType, events.ActionDelete, r.Deleted, nil)
		} else {
			e.publish(events.ImageEventType, events.ActionUnTag, nameOrID, map[string]string{"name": r.Untagged})
		}
	}
	return out, nil
}

type staticKeychain struct{ auth dockerapi.RegistryAuth }

func (k staticKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	return authn.FromConfig(authn.AuthConfig{Username: k.auth.Username, Password: k.auth.Password, IdentityToken: k.auth.IdentityToken}), nil
}

func keychain(auth dockerapi.RegistryAuth) authn.Keychain {
	if auth.Username == "" && auth.IdentityToken == "" {
		return nil
	}
	return staticKeychain{auth}
}

// ImagePull pulls an image from its registry.
func (e *Engine) ImagePull(ctx context.Context, ref, platform string, auth dockerapi.RegistryAuth, progress io.Writer) error {
	opts := images.PullOptions{Keychain: keychain(auth), Progress: progress}
	if platform != "" {
		p, err := parsePlatform(platform)
		if err != nil {
			return err
		}
		opts.Platform = p
	}
	id, err := e.opts.Images.Pull(ctx, ref, opts)
	if err != nil {
		return err
	}
	e.publish(events.ImageEventType, events.ActionPull, ref, map[string]string{"id": id})
	return nil
}

func parsePlatform(s string) (ocispec.Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return ocispec.Platform{}, fmt.Errorf("invalid platform %q: want os/arch[/variant]: %w", s, errdefs.ErrInvalid)
	}
	p := ocispec.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return p, nil
}

// ImagePush pushes an image to its registry.
func (e *Engine) ImagePush(ctx context.Context, ref string, auth dockerapi.RegistryAuth, progress io.Writer) error {
	_, err := e.opts.Images.Push(ctx, ref, images.PushOptions{Keychain: keychain(auth), Progress: progress})
	if err != nil {
		return noSuchImage(ref, err)
	}
	e.publish(events.ImageEventType, events.ActionPush, ref, nil)
	return nil
}

// ImageLoad loads an archive.
func (e *Engine) ImageLoad(ctx context.Context, r io.Reader, progress io.Writer) ([]string, error) {
	names, err := e.opts.Images.Load(ctx, r)
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		fmt.Fprintf(progress, "Loaded image: %s\n", n)
		e.publish(events.ImageEventType, events.ActionLoad, n, nil)
	}
	return names, nil
}

// ImageSave writes images as a docker-archive.
func (e *Engine) ImageSave(ctx context.Context, names []string, w io.Writer) error {
	return e.opts.Images.Save(ctx, w, names...)
}

// ImagePrune removes dangling images (all unused ones with dangling=false).
func (e *Engine) ImagePrune(ctx context.Context, filters dockerapi.Filters) (image.PruneReport, error) {
	list, err := e.opts.Images.List(ctx)
	if err != nil {
		return image.PruneReport{}, err
	}
	all := false
	for _, d := range filters["dangling"] {
		all = d == "false" || d == "0"
	}
	var rep image.PruneReport
	for _, s := range list {
		if (!all && len(s.RepoTags) > 0) || e.ImageInUse(s.ID) || !matchLabels(s.Labels, filters["label"]) {
			continue
		}
		rm, err := e.opts.Images.Remove(ctx, s.ID, true)
		if err != nil {
			continue
		}
		for _, r := range rm {
			rep.ImagesDeleted = append(rep.ImagesDeleted, image.DeleteResponse{Untagged: r.Untagged, Deleted: r.Deleted})
		}
		rep.SpaceReclaimed += uint64(s.Size)
	}
	return rep, nil
}

// ImageBuild builds an image from a tar build context.
func (e *Engine) ImageBuild(ctx context.Context, buildContext io.Reader, opts dockerapi.BuildOptions, progress io.Writer) (string, error) {
	dir, err := os.MkdirTemp("", "skiff-build-context-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	if err := extractContext(buildContext, dir); err != nil {
		return "", err
	}
	id, err := e.builder.Build(ctx, build.Options{
		ContextDir: dir,
		Dockerfile: opts.Dockerfile,
		Tags:       opts.Tags,
		BuildArgs:  opts.BuildArgs,
		Target:     opts.Target,
		NoCache:    opts.NoCache,
		Platform:   opts.Platform,
		Quiet:      opts.Quiet,
		Progress:   progress,
	})
	if err != nil {
		return "", err
	}
	for _, t := range opts.Tags {
		e.publish(events.ImageEventType, events.ActionTag, id.String(), map[string]string{"name": t})
	}
	return id.String(), nil
}

// extractContext unpacks a build context tarball (plain; the API layer
// decompresses) into dir, refusing entries that escape it.
func extractContext(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("build context: %v: %w", err, errdefs.ErrInvalid)
		}
		name := filepath.Clean("/" + h.Name)
		if name == "/" {
			continue
		}
		p := filepath.Join(dir, name)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, os.FileMode(h.Mode)&0o7777)
			if err != nil {
				return err
			}
			_, err = io.Copy(f, tr)
			f.Close()
			if err != nil {
				return fmt.Errorf("build context: %v: %w", err, errdefs.ErrInvalid)
			}
			_ = os.Chtimes(p, h.ModTime, h.ModTime)
		case tar.TypeSymlink:
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := os.Symlink(h.Linkname, p); err != nil {
				return err
			}
		}
	}
}

// ContainerExport writes the container's merged filesystem as a tar.
func (e *Engine) ContainerExport(ctx context.Context, nameOrID string, w io.Writer) error {
	c, err := e.ctrs.get(nameOrID)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	root := e.ctrs.path(c.rec.ID, "rootfs")
	if !c.rec.State.Running {
		img, err := e.opts.Images.Resolve(ctx, c.rec.ImageID)
		if err != nil {
			return err
		}
		lowers, err := e.opts.Snapshots.Lowers(ctx, img.Layers, img.DiffIDs)
		if err != nil {
			return err
		}
		if upper := e.ctrs.path(c.rec.ID, "upper"); dirExists(upper) {
			lowers = append([]string{upper}, lowers...)
		}
		root = e.ctrs.path(c.rec.ID, "export")
		if err := snapshot.Mount(root, lowers, "", ""); err != nil {
			return err
		}
		defer snapshot.Unmount(root)
	}
	_, err = layer.Diff(ctx, root, w)
	return err
}

func dirExists(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// ContainerCommit makes an image of the container's changes (its upper
// directory) on top of its image, with the container's config and the
// --change instructions applied.
func (e *Engine) ContainerCommit(ctx context.Context, nameOrID string, opts dockerapi.CommitOptions) (string, error) {
	c, err := e.ctrs.get(nameOrID)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	rec := c.rec
	c.mu.Unlock()
	img, err := e.opts.Images.Resolve(ctx, rec.ImageID)
	if err != nil {
		return "", err
	}
	cfg := rec.Config
	if opts.Config != nil {
		cfg = opts.Config
	}
	var ic dockerspec.DockerOCIImageConfig
	if err := convert(cfg, &ic); err != nil {
		return "", err
	}
	upper := e.ctrs.path(rec.ID, "upper")
	if err := os.MkdirAll(upper, 0o755); err != nil {
		return "", err
	}
	id, err := e.builder.Commit(ctx, build.CommitOptions{
		Base:       img.Config,
		BaseLayers: img.Layers,
		UpperDir:   upper,
		Config:     &ic,
		Changes:    opts.Changes,
		Author:     opts.Author,
		Comment:    opts.Comment,
		CreatedBy:  shellJoin(append([]string{rec.Path}, rec.Args...)),
		Tag:        opts.Reference,
	})
	if err != nil {
		return "", err
	}
	e.publish(events.ContainerEventType, events.ActionCommit, rec.ID, map[string]string{"name": rec.Name, "imageID": id.String()})
	return id.String(), nil
}
