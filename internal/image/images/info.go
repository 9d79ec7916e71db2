package images

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

// Summary is one image as listed by `skiff images`, shaped like an item of
// Docker's GET /images/json.
type Summary struct {
	ID          string            `json:"Id"`
	ParentID    string            `json:"ParentId"`
	RepoTags    []string          `json:"RepoTags"`
	RepoDigests []string          `json:"RepoDigests"`
	Created     int64             `json:"Created"`
	Size        int64             `json:"Size"`
	SharedSize  int64             `json:"SharedSize"`
	Labels      map[string]string `json:"Labels"`
	Containers  int64             `json:"Containers"`
}

// Inspect is an image as shown by `skiff inspect`, shaped like Docker's
// GET /images/{name}/json.
type Inspect struct {
	ID            string                           `json:"Id"`
	RepoTags      []string                         `json:"RepoTags"`
	RepoDigests   []string                         `json:"RepoDigests"`
	Parent        string                           `json:"Parent"`
	Comment       string                           `json:"Comment"`
	Created       string                           `json:"Created,omitempty"`
	DockerVersion string                           `json:"DockerVersion"`
	Author        string                           `json:"Author"`
	Config        *dockerspec.DockerOCIImageConfig `json:"Config"`
	Architecture  string                           `json:"Architecture"`
	Variant       string                           `json:"Variant,omitempty"`
	Os            string                           `json:"Os"`
	OsVersion     string                           `json:"OsVersion,omitempty"`
	Size          int64                            `json:"Size"`
	RootFS        RootFS                           `json:"RootFS"`
	Metadata      Metadata                         `json:"Metadata"`
}

// RootFS lists an image's layers by diffID.
type RootFS struct {
	Type   string   `json:"Type"`
	Layers []string `json:"Layers,omitempty"`
}

// Metadata is Docker's local image metadata.
type Metadata struct {
	LastTagTime string `json:"LastTagTime,omitempty"`
}

// HistoryItem is one step of an image's history, shaped like an item of
// Docker's GET /images/{name}/history: newest first, the image ID on the
// newest step and "<missing>" on the others.
type HistoryItem struct {
	ID        string   `json:"Id"`
	Created   int64    `json:"Created"`
	CreatedBy string   `json:"CreatedBy"`
	Tags      []string `json:"Tags"`
	Size      int64    `json:"Size"`
	Comment   string   `json:"Comment"`
}

// List returns one entry per image, newest first.
func (s *Service) List(ctx context.Context) ([]Summary, error) {
	all, err := s.images(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Summary, 0, len(all))
	for _, im := range all {
		sum := Summary{
			ID:          im.id.String(),
			RepoTags:    nonNil(im.names),
			RepoDigests: repoDigests(im),
			Size:        im.size(),
			Labels:      im.config.Config.Labels,
			Containers:  -1,
			SharedSize:  -1,
		}
		if im.config.Created != nil {
			sum.Created = im.config.Created.Unix()
		}
		if sum.Labels == nil {
			sum.Labels = map[string]string{}
		}
		out = append(out, sum)
	}
	slices.SortFunc(out, func(a, b Summary) int {
		if c := cmp.Compare(b.Created, a.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// Inspect returns the image nameOrID designates.
func (s *Service) Inspect(ctx context.Context, nameOrID string) (Inspect, error) {
	im, _, _, err := s.lookup(ctx, nameOrID)
	if err != nil {
		return Inspect{}, err
	}
	c := im.config
	cfg := c.Config
	in := Inspect{
		ID:           im.id.String(),
		RepoTags:     nonNil(im.names),
		RepoDigests:  repoDigests(im),
		Author:       c.Author,
		Config:       &cfg,
		Architecture: c.Architecture,
		Variant:      c.Variant,
		Os:           c.OS,
		OsVersion:    c.OSVersion,
		Size:         im.size(),
		RootFS:       RootFS{Type: c.RootFS.Type},
	}
	if c.Created != nil {
		in.Created = c.Created.UTC().Format(time.RFC3339Nano)
	}
	if in.RootFS.Type == "" {
		in.RootFS.Type = "layers"
	}
	for _, d := range c.RootFS.DiffIDs {
		in.RootFS.Layers = append(in.RootFS.Layers, d.String())
	}
	if n := len(c.History); n > 0 {
		in.Comment = c.History[n-1].Comment
	}
	return in, nil
}

// History returns the steps that made the image nameOrID designates.
func (s *Service) History(ctx context.Context, nameOrID string) ([]HistoryItem, error) {
	im, _, _, err := s.lookup(ctx, nameOrID)
	if err != nil {
		return nil, err
	}
	layers := im.man.Layers
	var items []HistoryItem
	li := 0
	for _, h := range im.config.History {
		it := HistoryItem{ID: "<missing>", CreatedBy: h.CreatedBy, Comment: h.Comment, Tags: nil}
		if h.Created != nil {
			it.Created = h.Created.Unix()
		}
		if !h.EmptyLayer {
			if li < len(layers) {
				it.Size = layers[li].Size
			}
			li++
		}
		items = append(items, it)
	}
	// Layers that no history entry describes (images made without history).
	for ; li < len(layers); li++ {
		items = append(items, HistoryItem{ID: "<missing>", Size: layers[li].Size})
	}
	if len(items) == 0 {
		items = append(items, HistoryItem{})
	}
	slices.Reverse(items)
	items[0].ID = im.id.String()
	items[0].Tags = nonNil(im.names)
	return items, nil
}

func repoDigests(im *image) []string {
	out := []string{}
	seen := map[string]bool{}
	for _, n := range im.names {
		repo := repoOf(n)
		rd := repo + "@" + im.root.Digest.String()
		if !seen[rd] {
			seen[rd] = true
			out = append(out, rd)
		}
	}
	return out
}

// repoOf strips the tag or digest from a normalised name.
func repoOf(n string) string {
	if i := strings.IndexByte(n, '@'); i >= 0 {
		n = n[:i]
	}
	if i := strings.LastIndexByte(n, ':'); i > strings.LastIndexByte(n, '/') {
		n = n[:i]
	}
	return n
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return slices.Clone(s)
}
