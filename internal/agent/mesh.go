package agent

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Mesh is the node's side of the service mesh for the pods the sidecar
// injector changed (package capture's Node; the daemon fills it in). The
// agent calls SetUp once the pod's sandbox exists and before any of its
// containers starts, backs the pod's mesh volume with the directory
// VolumeDir names, and calls TearDown when the pod goes. Without a Mesh a
// meshed pod runs as any other: its mesh volume is an ordinary emptyDir.
type Mesh interface {
	// Wants reports whether the pod needs the node's mesh (it carries the
	// injection status annotation and has a network namespace of its
	// own).
	Wants(pod *corev1.Pod) bool
	// VolumeDir is the host directory backing volume v of pod, when v is
	// the mesh's volume (ok false otherwise).
	VolumeDir(pod *corev1.Pod, v *corev1.Volume) (dir string, ok bool)
	// SetUp makes the pod's mesh directory and installs its traffic
	// capture in the network namespace netns; idempotent.
	SetUp(ctx context.Context, pod *corev1.Pod, netns string) error
	// TearDown removes both (netns may be "" when the namespace is
	// gone); idempotent.
	TearDown(ctx context.Context, podUID types.UID, netns string) error
}

// setUpMesh sets up a meshed pod's node side once per sandbox.
func (a *Agent) setUpMesh(ctx context.Context, w *podWorker, pod *corev1.Pod, sb *Sandbox) error {
	if a.opts.Mesh == nil || !a.opts.Mesh.Wants(pod) || w.meshSandbox == sb.ID {
		return nil
	}
	if err := a.opts.Mesh.SetUp(ctx, pod, sb.NetNS); err != nil {
		return fmt.Errorf("mesh: %w", err)
	}
	w.meshSandbox = sb.ID
	return nil
}

// tearDownMesh undoes setUpMesh; a pod that never had it costs nothing
// (the Mesh finds nothing to remove).
func (a *Agent) tearDownMesh(ctx context.Context, w *podWorker) error {
	if a.opts.Mesh == nil {
		return nil
	}
	netns := ""
	if sb, ok := a.rt.Sandbox(string(w.key.UID)); ok {
		netns = sb.NetNS
	}
	if err := a.opts.Mesh.TearDown(ctx, w.key.UID, netns); err != nil {
		return fmt.Errorf("mesh: %w", err)
	}
	w.meshSandbox = ""
	return nil
}

// meshVolumeDir is the host directory of the pod's mesh volume, when v is
// it.
func (a *Agent) meshVolumeDir(pod *corev1.Pod, v *corev1.Volume) (string, bool) {
	if a.opts.Mesh == nil || pod == nil {
		return "", false
	}
	return a.opts.Mesh.VolumeDir(pod, v)
}
