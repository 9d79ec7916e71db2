// Package registry serves the OCI Distribution API (/v2/, spec v1.1) over
// Skiff's content store, so that `skiff server` is a registry that docker,
// crane, podman and the cluster's nodes can push to and pull from.
//
// It is imported by the server wiring (internal/daemon) only; image code
// that wants blobs reads the content store directly.
//
// Everything a client can observe is persisted in the [content.Store], so
// a registry survives restarts:
//
//   - blobs and manifests are content-store blobs;
//   - an upload is a content-store ingest keyed by the upload's UUID, so
//     chunks stream to disk and an upload can resume after a restart; a
//     one-byte marker ingest records that the upload exists;
//   - the repository's view is kept in content-store references (which
//     also keep the content alive through GC), all under [RefPrefix]:
//     "<repo>:<tag>" for tags, "<repo>@<digest>" for every manifest pushed
//     and "<repo>#<digest>" for every blob uploaded or mounted into repo.
//
// Deleting a blob or a manifest removes only the repository's reference;
// the content store's GC reclaims the bytes once nothing reaches them.
//
// Writes can be guarded with [WithAuthorizer]. Errors are answered in the
// spec's JSON error format; content-store error kinds are translated here
// and nowhere below.
package registry
