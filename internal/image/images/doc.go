// Package images is the image service behind `skiff images`, `tag`, `rmi`,
// `inspect`, `history`, `save` and `load`, and later the Docker Engine API's
// image endpoints. It reads and writes the content store
// (internal/image/content) and shapes its answers like Docker's.
//
// Model: an image is identified by its ID, the digest of its config blob, as
// in Docker. An image exists while at least one reference in the store
// (a normalised name such as "docker.io/library/hello:v1", see
// build.NormalizeName) reaches it through a manifest or an index; there are
// no dangling images. Removing the last name removes the image; its blobs are
// reclaimed by the store's garbage collector.
//
// Sizes are the sums of the stored (usually compressed) layer blobs, not of
// their unpacked contents.
//
// Importers: the CLI and the daemon. It imports the content store and the
// build package (for name normalisation), nothing above them.
package images
