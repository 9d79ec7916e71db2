// Package build turns a Dockerfile and a build context into an image in the
// content store, like `docker build`: it parses with BuildKit's Dockerfile
// parser, applies every instruction to an image config and a list of
// layers, keeps a layer cache keyed like Docker's, and writes the config,
// layers and an OCI manifest into the store, tagging the result.
//
// Everything but RUN happens here. RUN is delegated to a [Runner] (the
// container engine); a [Builder] without one refuses RUN with an error
// instead of pretending.
//
// Conventions chosen (documented for users of skiff build):
//   - Tags are normalised like Docker's: "hello" is stored as
//     "docker.io/library/hello:latest"; "skiff.local/app" as
//     "skiff.local/app:latest". FROM resolves names the same way.
//   - The image ID is the digest of the image config, as in Docker.
//   - History entries follow BuildKit ("COPY a /b # buildkit", comment
//     "buildkit.dockerfile.v0"); instructions that change only the config
//     get empty_layer: true. A FROM scratch image starts with
//     Env PATH=/usr/local/sbin:... and WorkingDir "/", as BuildKit's.
//   - A COPY or ADD produces one layer. Every file it writes is owned by
//     0:0 unless --chown says otherwise (tar archives extracted by ADD keep
//     their owners); implicit parent directories are 0755 root.
//   - WORKDIR adds a layer with the directory when the directory does not
//     exist yet, as BuildKit does.
//   - With a source date epoch (Options.SourceDateEpoch or the
//     SOURCE_DATE_EPOCH build arg) every timestamp is clamped to it and the
//     same inputs give the same image digest.
//   - The cache lives in <store root>/buildcache/: one JSON file per cache
//     key holding the image state after that step. Entries whose layer
//     blobs were garbage collected are treated as misses.
//
// Importers: the CLI (skiff build) and the daemon. It imports the content
// store and the layer package, nothing above them.
package build
