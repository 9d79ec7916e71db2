// Package layer converts between OCI image layer tarballs and overlayfs
// directories.
//
// Skiff unpacks every image layer once into its own directory and stacks
// those directories as overlayfs lowers. [Unpack] turns a layer tarball into
// such a directory, translating OCI whiteouts into overlayfs ones; [Diff] does
// the reverse for an overlayfs upper directory (what a container or a build
// step changed), producing a deterministic layer tarball.
//
// The package is a leaf: it is imported by the image store, the builder and
// the runtime, and imports nothing from Skiff.
package layer

import (
	"errors"
	"strings"
)

// ErrInvalid is wrapped by every error caused by the content of a layer
// rather than by the machine: malformed or truncated tarballs, entries whose
// paths would escape the target directory, unsupported entry types.
var ErrInvalid = errors.New("invalid layer")

const (
	// whiteoutPrefix marks an OCI whiteout: ".wh.NAME" deletes NAME from
	// the layers below.
	whiteoutPrefix = ".wh."
	// whiteoutMetaPrefix is reserved for whiteout metadata (AUFS legacy).
	whiteoutMetaPrefix = whiteoutPrefix + whiteoutPrefix
	// opaqueWhiteout in a directory hides everything the layers below have
	// in that directory.
	opaqueWhiteout = whiteoutMetaPrefix + ".opq"

	// Overlayfs marks an opaque directory with this xattr set to "y". With
	// the userxattr mount option the user.* form is used instead.
	overlayOpaqueXattr     = "trusted.overlay.opaque"
	overlayUserOpaqueXattr = "user.overlay.opaque"

	// paxXattrPrefix is how xattrs travel in PAX extended headers.
	paxXattrPrefix = "SCHILY.xattr."
)

// isOverlayXattr reports whether an xattr is overlayfs bookkeeping, which
// never travels inside a layer tarball as such.
func isOverlayXattr(name string) bool {
	return strings.HasPrefix(name, "trusted.overlay.") || strings.HasPrefix(name, "user.overlay.")
}
