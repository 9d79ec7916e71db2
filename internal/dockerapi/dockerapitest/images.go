package dockerapitest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/distribution/reference"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/image"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"skiff.dev/skiff/internal/dockerapi"
	"skiff.dev/skiff/internal/errdefs"
)

type fakeImage struct {
	id              string // sha256:...
	created         time.Time
	config          *container.Config
	comment, author string
	size            int64
}

// AddImage adds an image with config tagged ref ("busybox:latest") and
// returns its ID.
func (b *Backend) AddImage(ref string, cfg *container.Config) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	img := b.addImage(cfg, "", "")
	if err := b.tag(img, ref); err != nil {
		panic(err) // a test's mistake
	}
	return img.id
}

// addImage records a new image; b.mu is held.
func (b *Backend) addImage(cfg *container.Config, comment, author string) *fakeImage {
	b.seq++
	c := *cfg
	c.Image = ""
	blob, _ := json.Marshal(struct {
		C   container.Config
		Seq int
		Now time.Time
	}{c, b.seq, time.Now()})
	sum := sha256.Sum256(blob)
	img := &fakeImage{id: "sha256:" + hex.EncodeToString(sum[:]), created: time.Now(), config: &c,
		comment: comment, author: author, size: int64(len(blob)) * 1000}
	b.images[img.id] = img
	return img
}

// normalize turns a reference into its familiar form with a tag
// ("busybox" → "busybox:latest").
func normalize(ref string) (string, error) {
	n, err := reference.ParseNormalizedNamed(ref)
	if err != nil {
		return "", errf(errdefs.ErrInvalid, "invalid reference format: %v", err)
	}
	return reference.FamiliarString(reference.TagNameOnly(n)), nil
}

// image finds an image by reference, ID or unique ID prefix; b.mu is held.
func (b *Backend) image(ref string) (*fakeImage, error) {
	if img, ok := b.images[ref]; ok {
		return img, nil
	}
	if img, ok := b.images["sha256:"+ref]; ok {
		return img, nil
	}
	if n, err := normalize(ref); err == nil {
		if id, ok := b.tags[n]; ok {
			return b.images[id], nil
		}
	}
	if len(ref) >= 4 && strings.Trim(strings.TrimPrefix(ref, "sha256:"), "0123456789abcdef") == "" {
		img, ok, err := byPrefix(b.images, strings.TrimPrefix(ref, "sha256:"), "sha256:")
		if err != nil {
			return nil, err
		}
		if ok {
			return img, nil
		}
	}
	return nil, errf(errdefs.ErrNotFound, "No such image: %s", ref)
}

// tag points ref at img; b.mu is held.
func (b *Backend) tag(img *fakeImage, ref string) error {
	n, err := normalize(ref)
	if err != nil {
		return err
	}
	b.tags[n] = img.id
	b.emit(events.ImageEventType, events.ActionTag, img.id, map[string]string{"name": n})
	return nil
}

func (b *Backend) repoTags(id string) []string {
	tags := []string{}
	for t, i := range b.tags {
		if i == id {
			tags = append(tags, t)
		}
	}
	slices.Sort(tags)
	return tags
}

func (b *Backend) usedBy(id string) []*fakeContainer {
	var cs []*fakeContainer
	for _, c := range b.containers {
		if c.imageID == id {
			cs = append(cs, c)
		}
	}
	return cs
}

// ImageList implements dockerapi.Backend. Filters: reference (a glob),
// dangling, label.
func (b *Backend) ImageList(_ context.Context, opts dockerapi.ImageListOptions) ([]image.Summary, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []image.Summary
	for _, img := range b.images {
		tags := b.repoTags(img.id)
		if !matchAny(opts.Filters["reference"], func(p string) bool {
			return slices.ContainsFunc(tags, func(t string) bool {
				repo, _, _ := strings.Cut(t, ":")
				ok1, _ := path.Match(p, t)
				ok2, _ := path.Match(p, repo)
				return ok1 || ok2
			})
		}) || !matchAny(opts.Filters["dangling"], func(v string) bool { return (v == "true") == (len(tags) == 0) }) ||
			!matchLabels(img.config.Labels, opts.Filters["label"]) {
			continue
		}
		out = append(out, image.Summary{
			ID: img.id, RepoTags: tags, RepoDigests: []string{}, Created: img.created.Unix(), Size: img.size,
			Labels: img.config.Labels, Containers: int64(len(b.usedBy(img.id))), SharedSize: -1,
		})
	}
	slices.SortFunc(out, func(x, y image.Summary) int { return int(y.Created - x.Created) })
	return out, nil
}

// ImageInspect implements dockerapi.Backend.
func (b *Backend) ImageInspect(_ context.Context, ref string) (image.InspectResponse, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	img, err := b.image(ref)
	if err != nil {
		return image.InspectResponse{}, err
	}
	c := img.config
	return image.InspectResponse{
		ID: img.id, RepoTags: b.repoTags(img.id), RepoDigests: []string{}, Comment: img.comment, Author: img.author,
		Created: img.created.UTC().Format(time.RFC3339Nano), Architecture: runtime.GOARCH, Os: "linux", Size: img.size,
		RootFS: image.RootFS{Type: "layers"},
		Config: &dockerspec.DockerOCIImageConfig{ImageConfig: ocispec.ImageConfig{
			User: c.User, Env: c.Env, Entrypoint: c.Entrypoint, Cmd: c.Cmd, WorkingDir: c.WorkingDir,
			Labels: c.Labels, StopSignal: c.StopSignal,
		}},
	}, nil
}

// ImageHistory implements dockerapi.Backend: one entry per image.
func (b *Backend) ImageHistory(_ context.Context, ref string) ([]image.HistoryResponseItem, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	img, err := b.image(ref)
	if err != nil {
		return nil, err
	}
	return []image.HistoryResponseItem{{ID: img.id, Created: img.created.Unix(), CreatedBy: "dockerapitest",
		Size: img.size, Tags: b.repoTags(img.id), Comment: img.comment}}, nil
}

// ImageTag implements dockerapi.Backend.
func (b *Backend) ImageTag(_ context.Context, source, target string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	img, err := b.image(source)
	if err != nil {
		return err
	}
	return b.tag(img, target)
}

// ImageRemove implements dockerapi.Backend.
func (b *Backend) ImageRemove(_ context.Context, ref string, force, _ bool) ([]image.DeleteResponse, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	img, err := b.image(ref)
	if err != nil {
		return nil, err
	}
	tags := b.repoTags(img.id)
	if n, err := normalize(ref); err == nil && b.tags[n] == img.id && len(tags) > 1 {
		delete(b.tags, n)
		b.emit(events.ImageEventType, events.ActionUnTag, img.id, map[string]string{"name": n})
		return []image.DeleteResponse{{Untagged: n}}, nil
	}
	if !force {
		if len(tags) > 1 && !slices.Contains(tags, ref) {
			return nil, errf(errdefs.ErrConflict, "conflict: unable to delete %s (must be forced) - image is referenced in multiple repositories", shortID(img.id))
		}
		if cs := b.usedBy(img.id); len(cs) > 0 {
			return nil, errf(errdefs.ErrConflict, "conflict: unable to delete %s (must be forced) - image is being used by container %s", ref, shortID(cs[0].id))
		}
	}
	return b.deleteImage(img), nil
}

// deleteImage untags and deletes img; b.mu is held.
func (b *Backend) deleteImage(img *fakeImage) []image.DeleteResponse {
	var resp []image.DeleteResponse
	for _, t := range b.repoTags(img.id) {
		delete(b.tags, t)
		resp = append(resp, image.DeleteResponse{Untagged: t})
		b.emit(events.ImageEventType, events.ActionUnTag, img.id, map[string]string{"name": t})
	}
	delete(b.images, img.id)
	b.emit(events.ImageEventType, events.ActionDelete, img.id, nil)
	return append(resp, image.DeleteResponse{Deleted: img.id})
}

// ImagePrune implements dockerapi.Backend: it removes unused untagged
// images (all unused ones with dangling=false).
func (b *Backend) ImagePrune(_ context.Context, f dockerapi.Filters) (image.PruneReport, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	all := slices.Contains(f["dangling"], "false")
	var rep image.PruneReport
	for _, img := range b.images {
		if len(b.usedBy(img.id)) > 0 || !all && len(b.repoTags(img.id)) > 0 {
			continue
		}
		rep.ImagesDeleted = append(rep.ImagesDeleted, b.deleteImage(img)...)
		rep.SpaceReclaimed += uint64(img.size)
	}
	return rep, nil
}

// ImagePull implements dockerapi.Backend: it finds ref in b.Remote (or
// runs b.PullFunc).
func (b *Backend) ImagePull(ctx context.Context, ref, _ string, _ dockerapi.RegistryAuth, progress io.Writer) error {
	n, err := normalize(ref)
	if err != nil {
		return err
	}
	if b.PullFunc != nil {
		return b.PullFunc(ctx, n, progress)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	cfg, ok := b.Remote[n]
	if !ok {
		repo, _, _ := strings.Cut(n, ":")
		return errf(errdefs.ErrNotFound, "pull access denied for %s, repository does not exist or may require 'docker login'", repo)
	}
	repo, tag, _ := strings.Cut(n, ":")
	img := b.addImage(cfg, "", "")
	fmt.Fprintf(progress, "%s: Pulling from %s\n", tag, repo)
	fmt.Fprintf(progress, "Digest: %s\n", img.id)
	fmt.Fprintf(progress, "Status: Downloaded newer image for %s\n", n)
	b.emit(events.ImageEventType, events.ActionPull, img.id, map[string]string{"name": n})
	return b.tag(img, n)
}

// ImagePush implements dockerapi.Backend: it pretends.
func (b *Backend) ImagePush(_ context.Context, ref string, _ dockerapi.RegistryAuth, progress io.Writer) error {
	n, err := normalize(ref)
	if err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	id, ok := b.tags[n]
	if !ok {
		return errf(errdefs.ErrNotFound, "tag does not exist: %s", n)
	}
	repo, tag, _ := strings.Cut(n, ":")
	fmt.Fprintf(progress, "The push refers to repository [%s]\n", repo)
	fmt.Fprintf(progress, "%s: digest: %s size: %d\n", tag, id, b.images[id].size)
	b.emit(events.ImageEventType, events.ActionPush, id, map[string]string{"name": n})
	return nil
}
