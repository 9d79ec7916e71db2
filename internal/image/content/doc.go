// Package content is Skiff's on-disk, content-addressed store of OCI blobs
// (layers, image configs, manifests and image indexes) and of the named
// references that keep images alive.
//
// It is the base of the image engine: image build (internal/image/build),
// the image commands (skiff images, tag, rmi, save, load, pull, push), the
// embedded registry and the node agent's image pulls all read and write
// blobs through it. It knows nothing about HTTP, registries or Dockerfiles.
//
// The design follows containerd's content store: small interfaces
// ([Provider], [Ingester], [Manager], [RefStore]) implemented by [Store]
// over a directory:
//
//	root/blobs/sha256/<hex>     committed blobs, read-only, never partial
//	root/ingest/<hash(ref)>/    in-progress writes (data, lock, ref)
//	root/refs.json              named references (atomically replaced)
//
// Writes stream to disk, are digest- and size-checked, fsynced and then
// hard-linked into place, so a crash mid-write never leaves a visible half
// blob and an interrupted write can resume with the same ref. Reads through
// [Store.Open] verify the digest. [Store.GC] removes blobs no reference
// reaches through indexes and manifests.
//
// Errors wrap the sentinels [ErrNotFound], [ErrAlreadyExists], [ErrInvalid]
// and [ErrUnavailable]; callers test them with errors.Is and translate them
// to wire codes only at the HTTP edge.
//
// Concurrency: a Store is safe for concurrent use by many goroutines, and
// ingests are locked with flock(2) so that two processes sharing a root do
// not write the same ref at once. Garbage collection excludes concurrent
// commits and reference updates only within one process.
package content
