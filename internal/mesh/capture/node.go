package capture

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"skiff.dev/skiff/internal/errdefs"
	"skiff.dev/skiff/internal/mesh/meshconfig"
)

// Node is the node's side of its meshed pods, what the node agent calls
// for a pod carrying the injection status annotation: the pod's mesh
// directory (<Dir>/<pod UID>/, mounted at meshconfig.MountPath in the
// sidecar; the node's mesh server puts its socket there) and the capture
// in the pod's network namespace.
type Node struct {
	dir string
	log *slog.Logger
}

// NewNode returns the node's mesh side with pod directories under dir
// (<node data dir>/meshconfig.PodsDir). It does no I/O.
func NewNode(dir string, log *slog.Logger) *Node {
	return &Node{dir: dir, log: log.With("component", "mesh-capture")}
}

// Wants reports whether the pod needs the node's mesh: it carries the
// injection status annotation and has a network namespace of its own.
func (n *Node) Wants(pod *corev1.Pod) bool {
	_, injected := pod.Annotations[meshconfig.StatusAnnotation]
	return injected && !pod.Spec.HostNetwork
}

// VolumeDir is the pod's mesh directory when v is the volume injection
// added (an emptyDir named meshconfig.VolumeName).
func (n *Node) VolumeDir(pod *corev1.Pod, v *corev1.Volume) (string, bool) {
	if v.Name != meshconfig.VolumeName || v.EmptyDir == nil || !n.Wants(pod) {
		return "", false
	}
	return n.PodDir(pod.UID), true
}

// PodDir is the pod's mesh directory on the node.
func (n *Node) PodDir(podUID types.UID) string {
	return filepath.Join(n.dir, string(podUID))
}

// SetUp makes the pod's mesh directory and installs its capture in
// netnsPath; idempotent. A pod on the host's network is refused (its
// capture would be the node's). Bad capture annotations wrap
// errdefs.ErrInvalid.
func (n *Node) SetUp(_ context.Context, pod *corev1.Pod, netnsPath string) error {
	if pod.Spec.HostNetwork || netnsPath == "" {
		return fmt.Errorf("mesh capture: pod %s/%s uses the host's network: %w", pod.Namespace, pod.Name, errdefs.ErrInvalid)
	}
	spec, err := SpecFor(pod)
	if err != nil {
		return fmt.Errorf("mesh capture: %w", err)
	}
	// Traversable by the proxy's user; the mesh server owns what is in it.
	if err := os.MkdirAll(n.PodDir(pod.UID), 0o755); err != nil {
		return fmt.Errorf("mesh directory: %w", err)
	}
	if err := Install(netnsPath, spec); err != nil {
		return fmt.Errorf("mesh capture: %w", err)
	}
	return nil
}

// TearDown removes the pod's capture (when its namespace still exists;
// netnsPath may be "") and its mesh directory; idempotent.
func (n *Node) TearDown(_ context.Context, podUID types.UID, netnsPath string) error {
	if _, err := os.Stat(n.PodDir(podUID)); os.IsNotExist(err) {
		return nil // never set up (SetUp makes the directory first)
	}
	if netnsPath != "" {
		if err := Remove(netnsPath); err != nil {
			n.log.Warn("removing a pod's capture", "pod", podUID, "err", err)
		}
	}
	if err := os.RemoveAll(n.PodDir(podUID)); err != nil {
		return fmt.Errorf("mesh directory: %w", err)
	}
	return nil
}
