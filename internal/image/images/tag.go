package images

import (
	"context"
	"fmt"
	"slices"
)

// Removed reports one effect of Remove, like an item of Docker's
// DELETE /images/{name} response: exactly one field is set.
type Removed struct {
	Untagged string `json:"Untagged,omitempty"`
	Deleted  string `json:"Deleted,omitempty"`
}

// Tag gives the image source designates the name target (normalised),
// replacing whatever target named before.
func (s *Service) Tag(ctx context.Context, source, target string) error {
	im, _, _, err := s.lookup(ctx, source)
	if err != nil {
		return err
	}
	n, err := normalize(target)
	if err != nil {
		return fmt.Errorf("tag: %w", err)
	}
	if err := s.store.SetRef(ctx, n, im.root); err != nil {
		return fmt.Errorf("tag %s as %s: %w", source, n, err)
	}
	return nil
}

// Remove is rmi. Removing a name untags it; removing the image's last name,
// or removing by ID, deletes the image. Removing by ID an image that has
// several names, or deleting an image the InUse hook reports in use, fails
// with ErrConflict unless force. Deleted images' blobs are then reclaimed by
// the store's garbage collector (subject to its grace period).
func (s *Service) Remove(ctx context.Context, nameOrID string, force bool) ([]Removed, error) {
	im, name, _, err := s.lookup(ctx, nameOrID)
	if err != nil {
		return nil, err
	}
	id := im.id.String()
	inUse := s.inUse != nil && s.inUse(id)
	var untag []string
	deleting := false
	switch {
	case name != "" && len(im.names) > 1:
		untag = []string{name} // other names keep the image alive
	case name != "":
		if inUse && !force {
			return nil, fmt.Errorf("unable to remove %s: image %s is in use by a container (use force): %w", name, im.id.Encoded()[:12], ErrConflict)
		}
		untag, deleting = []string{name}, true
	default:
		if len(im.names) > 1 && !force {
			return nil, fmt.Errorf("unable to delete %s (must be forced): image is referenced in multiple repositories: %w", im.id.Encoded()[:12], ErrConflict)
		}
		if inUse && !force {
			return nil, fmt.Errorf("unable to delete %s (must be forced): image is in use by a container: %w", im.id.Encoded()[:12], ErrConflict)
		}
		untag, deleting = slices.Clone(im.names), true
	}
	var out []Removed
	for _, n := range untag {
		if err := s.store.DeleteRef(ctx, n); err != nil {
			return out, fmt.Errorf("untag %s: %w", n, err)
		}
		out = append(out, Removed{Untagged: n})
	}
	if !deleting {
		return out, nil
	}
	out = append(out, Removed{Deleted: id})
	if _, err := s.store.GC(ctx); err != nil {
		return out, fmt.Errorf("deleted %s; garbage collection: %w", id, err)
	}
	return out, nil
}
