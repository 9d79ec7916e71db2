package daemon

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	"skiff.dev/skiff/internal/image/images"
	"skiff.dev/skiff/internal/mesh/capture"
	"skiff.dev/skiff/internal/mesh/meshconfig"
)

// The node's part of the mesh: pods' mesh directories live under
// <node data dir>/mesh/pods/<pod UID>/ (where the node's mesh server puts
// each pod's socket), capture goes into each meshed pod's network
// namespace, and the sidecar image is made from the skiff-proxy binary
// beside this executable.

// meshPodsDir is the directory of the node's pods' mesh directories.
func meshPodsDir(nodeData string) string {
	return filepath.Join(nodeData, meshconfig.PodsDir)
}

// newMeshNode is the agent's Mesh.
func newMeshNode(nodeData string, log *slog.Logger) *capture.Node {
	return capture.NewNode(meshPodsDir(nodeData), log)
}

// ensureProxyImage makes meshconfig.Image from the skiff-proxy binary
// (explicit, else beside this executable, else on $PATH). Without the
// binary, meshed pods' sidecars cannot start (ErrImageNeverPull-like
// pull errors); the node runs all the same.
func ensureProxyImage(ctx context.Context, imgs *images.Service, explicit string, log *slog.Logger) {
	bin, err := findProxy(explicit)
	if err != nil {
		log.Warn("no sidecar image: meshed pods will not start", "component", "agent", "err", err)
		return
	}
	id, err := imgs.EnsureBuiltin(ctx, images.Builtin{
		Ref:        meshconfig.Image,
		Files:      []images.BuiltinFile{{Path: "/usr/local/bin/skiff-proxy", Source: bin}},
		Entrypoint: []string{"/usr/local/bin/skiff-proxy"},
		User:       strconv.Itoa(meshconfig.ProxyUID) + ":" + strconv.Itoa(meshconfig.ProxyGID),
	})
	if err != nil {
		log.Warn("no sidecar image: meshed pods will not start", "component", "agent", "err", err)
		return
	}
	log.Debug("sidecar image ready", "component", "agent", "image", meshconfig.Image, "id", id, "binary", bin)
}

// findProxy locates the skiff-proxy binary, as findShim does skiff-shim.
func findProxy(explicit string) (string, error) {
	if explicit != "" {
		return explicit, nil
	}
	if self, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(self), "skiff-proxy")
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	p, err := exec.LookPath("skiff-proxy")
	if err != nil {
		return "", errors.New("skiff-proxy not found beside skiff or in $PATH")
	}
	return p, nil
}
