// Package dockerapi serves the Docker Engine API over a [Backend] (the
// container engine), so that the real docker CLI and the moby Go client work
// against Skiff unmodified.
//
// The wire types are moby's own (github.com/moby/moby/api/types); nothing
// here copies them. The package owns only what happens at the HTTP edge:
//
//   - routing, with and without the /v1.NN prefix, and API-version checks
//     (requests for a version newer than [APIVersion] or older than
//     [MinAPIVersion] are refused with 400, like dockerd);
//   - decoding query parameters (both encodings of `filters`) and strict
//     JSON bodies (unknown fields are a 400 that names the field, except
//     the few that older clients still send and dockerd accepts, such as
//     an exec's Detach or a container-wide MacAddress);
//   - the stream formats: the multiplexed stdout/stderr framing (raw for
//     TTY containers), hijacked attach/exec connections with the
//     `Upgrade: tcp` handshake, JSON progress messages for pull, push,
//     load and build, JSON event streams;
//   - translating errdefs kinds into HTTP status codes and Docker's
//     `{"message": ...}` error bodies.
//
// Everything with semantics (what a container is, how an image is built)
// belongs to the Backend. The composition root (internal/daemon) builds a
// [Server] with [New] and runs it with [Server.Serve]; tests may mount
// [Server.Handler] anywhere. The dockerapitest package holds an in-memory
// Backend for tests of this package and of its clients.
package dockerapi
