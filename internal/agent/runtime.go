package agent

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"

	"skiff.dev/skiff/internal/agent/podruntime"
	"skiff.dev/skiff/internal/runtime"
)

// Runtime is what the agent needs of the pod runtime: package
// podruntime's Manager, or a fake in tests. Every method must be safe
// for concurrent use.
type Runtime interface {
	// RunSandbox creates the pod's sandbox (namespaces, IP, /etc/hosts,
	// resolv.conf), or returns the one it has; idempotent by PodUID.
	RunSandbox(ctx context.Context, c SandboxConfig) (Sandbox, error)
	// RemoveSandbox removes the pod's sandbox once its containers are
	// gone; idempotent.
	RemoveSandbox(ctx context.Context, podUID string) error
	// Sandbox reports the pod's sandbox; Sandbox.Ready says whether it is
	// intact.
	Sandbox(podUID string) (Sandbox, bool)
	// Sandboxes lists every sandbox.
	Sandboxes() []Sandbox
	// EnsureImage makes ref present per policy and returns its image ID.
	// An image missing under PullNever wraps errdefs.ErrNotFound.
	EnsureImage(ctx context.Context, ref string, policy corev1.PullPolicy, auth []ImageCredential) (string, error)
	// CreateAndStart creates the container in its pod's sandbox and
	// starts it; on error nothing of it is left. A bad configuration
	// wraps errdefs.ErrInvalid.
	CreateAndStart(ctx context.Context, c ContainerConfig) (string, error)
	// Stop sends the stop signal, waits up to grace, then SIGKILL, and
	// returns once the container exited.
	Stop(ctx context.Context, containerID string, grace time.Duration) error
	// Remove deletes a container, its record and its log; unknown IDs
	// are not an error.
	Remove(ctx context.Context, containerID string) error
	// List reports the containers of a pod ("" = of all pods), running
	// and exited, as recorded: it survives restarts of the agent.
	List(ctx context.Context, podUID string) ([]ContainerStatus, error)
	// Wait blocks until the container exited or ctx ends.
	Wait(ctx context.Context, containerID string) (ContainerStatus, error)
	// Exec runs cmd in the running container and returns its exit code.
	Exec(ctx context.Context, containerID string, cmd []string, s runtime.Streams, tty bool, resize <-chan [2]uint16) (int, error)
}

// The runtime's types, as the agent uses them.
type (
	SandboxConfig   = podruntime.SandboxConfig
	Sandbox         = podruntime.Sandbox
	ContainerConfig = podruntime.ContainerConfig
	ContainerStatus = podruntime.ContainerStatus
	ImageCredential = podruntime.Credential
)

// Container states in ContainerStatus.State.
const (
	StateCreated = podruntime.StateCreated
	StateRunning = podruntime.StateRunning
	StateExited  = podruntime.StateExited
)

var _ Runtime = (*podruntime.Manager)(nil)
