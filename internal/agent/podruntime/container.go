package podruntime

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"

	"skiff.dev/skiff/internal/errdefs"
	"skiff.dev/skiff/internal/image/images"
	"skiff.dev/skiff/internal/image/snapshot"
	"skiff.dev/skiff/internal/runtime"
	"skiff.dev/skiff/internal/runtime/oci"
)

// ContainerConfig describes a container of a pod, as the kubelet computed
// it from the pod spec.
type ContainerConfig struct {
	PodUID, Name string
	// Attempt counts the container's restarts (0 first); it names the log
	// file, and one pod cannot hold two containers of the same name and
	// attempt.
	Attempt int
	// Image is a reference or image ID already present (see EnsureImage).
	Image string
	// Command and Args have Kubernetes' semantics over the image's
	// ENTRYPOINT and CMD; $(VAR) references must already be expanded.
	Command, Args []string
	// Env is KEY=VALUE, over the image's environment.
	Env        []string
	WorkingDir string
	// Mounts are the pod's volumes as the kubelet prepared them (bind
	// sources on the host) and tmpfs mounts.
	Mounts []oci.Mount
	// TerminationMessagePath, if set, is where the container finds a
	// writable file of its own; ContainerStatus.TerminationMessagePath
	// names it on the host for the kubelet to read after the exit.
	TerminationMessagePath string
	// User and Group are runAsUser and runAsGroup; without them the
	// image's USER applies.
	User, Group        *int64
	SupplementalGroups []int64
	// RunAsNonRoot refuses to start as uid 0 (ErrInvalid, with the
	// kubelet's message).
	RunAsNonRoot             bool
	ReadOnlyRootfs           bool
	Privileged               bool
	AllowPrivilegeEscalation *bool
	// CapAdd and CapDrop are capability names with or without "CAP_",
	// or "ALL", over the default set (Docker's and containerd's).
	CapAdd, CapDrop []string
	// SeccompProfile is SeccompUnconfined ("" too) or
	// SeccompRuntimeDefault.
	SeccompProfile string
	// Resources, as the kubelet computes them from requests and limits.
	// Zero means unset.
	CPUShares   uint64
	CPUQuota    int64 // µs per CPUPeriod
	CPUPeriod   uint64
	MemoryLimit int64
	OOMScoreAdj int
	// Stdin keeps the container's stdin open for Attach; StdinOnce closes
	// it after the first attach ends; TTY gives it a terminal.
	Stdin, StdinOnce, TTY bool
	Labels                map[string]string
}

// Container states and reasons in ContainerStatus.
const (
	StateCreated = "created"
	StateRunning = "running"
	StateExited  = "exited"

	ReasonCompleted = "Completed"
	ReasonError     = "Error"
	ReasonOOMKilled = "OOMKilled"
)

// CreateAndStart creates the container in its pod's sandbox, starts it
// and returns its ID.
//
// On error nothing of the container is left (the kubelet records the
// failed attempt itself, as exit code 128 with reason StartError). Errors:
// no sandbox or image not present: ErrNotFound; a bad configuration or
// runAsNonRoot refused: ErrInvalid, with the kubelet's message; the name
// and attempt are taken in the pod: ErrAlreadyExists; the runtime refused
// to run it: its message, e.g. `exec: "nope": executable file not found in
// $PATH` (ErrInvalid).
func (m *Manager) CreateAndStart(ctx context.Context, c ContainerConfig) (string, error) {
	if err := m.checkStarted(); err != nil {
		return "", err
	}
	if err := validName("container name", c.Name); err != nil {
		return "", err
	}
	if c.Attempt < 0 {
		return "", fmt.Errorf("container %s: attempt %d is negative: %w", c.Name, c.Attempt, errdefs.ErrInvalid)
	}
	unlock := m.podLocks.lock(c.PodUID)
	defer unlock()

	m.mu.Lock()
	sb := m.sandboxes[c.PodUID]
	m.mu.Unlock()
	if sb == nil || sb.rec.State != stateReady {
		return "", fmt.Errorf("pod %s has no sandbox: %w", c.PodUID, errdefs.ErrNotFound)
	}
	box := m.public(sb, true)
	for _, o := range m.podContainers(c.PodUID) {
		o.mu.Lock()
		taken := o.rec.Name == c.Name && o.rec.Attempt == c.Attempt
		o.mu.Unlock()
		if taken {
			return "", fmt.Errorf("container %s attempt %d of pod %s/%s already exists (%s): %w",
				c.Name, c.Attempt, box.Namespace, box.Name, o.rec.ID, errdefs.ErrAlreadyExists)
		}
	}
	img, err := m.opts.Images.Resolve(ctx, c.Image)
	if err != nil {
		return "", fmt.Errorf("image %q of container %s is not present: %w", c.Image, c.Name, err)
	}
	sig, err := stopSignal(img.Config.Config.StopSignal)
	if err != nil {
		return "", err
	}

	id := newID()
	ctr := &container{rec: containerRecord{
		ID: id, SandboxID: box.ID, PodUID: c.PodUID, Name: c.Name, Attempt: c.Attempt,
		Image: c.Image, ImageRef: img.Name, ImageID: img.ID.String(), Labels: maps.Clone(c.Labels),
		LogPath:   filepath.Join(m.podLogDir(box.Namespace, box.Name, box.PodUID), c.Name, strconv.Itoa(c.Attempt)+".log"),
		CreatedAt: time.Now().UTC(), State: stateCreating, StopSignal: int(sig),
	}}
	if ctr.rec.ImageRef == "" {
		ctr.rec.ImageRef = ctr.rec.ImageID
	}
	ctr.mu.Lock()
	defer ctr.mu.Unlock()
	undo, bundle, err := m.prepareContainer(ctx, ctr, &c, box, img)
	if err != nil {
		undo()
		return "", fmt.Errorf("container %s of pod %s/%s: %w", c.Name, box.Namespace, box.Name, err)
	}

	// The process may run and exit within Start: its start time is taken
	// before, so that it never comes after the exit time.
	started := time.Now().UTC()
	pid, err := m.opts.Runtime.Start(ctx, runtime.StartRequest{
		ID: id, Bundle: bundle, LogPath: ctr.rec.LogPath,
		OpenStdin: c.Stdin, StdinOnce: c.StdinOnce, Terminal: c.TTY,
	})
	if err != nil {
		undo()
		return "", fmt.Errorf("container %s of pod %s/%s: %w", c.Name, box.Namespace, box.Name, err)
	}
	if ctr.freshPIDNS {
		// The pod's shared PID namespace is this container's: later ones
		// join it through the sandbox's file.
		if err := bindPIDNamespace(pid, box.PIDNS); err != nil {
			m.log.Warn("bind the pod's PID namespace", "pod", box.Namespace+"/"+box.Name, "err", err)
		}
	}
	ctr.rec.State = stateRunning
	ctr.rec.StartedAt = started
	if err := m.saveContainer(&ctr.rec); err != nil {
		// It runs: keep it (the record says "creating", which Start
		// adopts as running).
		m.log.Error("save container", "id", id, "err", err)
	}
	m.log.Debug("container started", "pod", box.Namespace+"/"+box.Name, "container", c.Name, "id", id, "pid", pid)
	return id, nil
}

// prepareContainer writes the container's intent record, mounts its root
// filesystem and writes its bundle. The returned undo removes all of it,
// record included (also after success, as long as the container does not
// run).
func (m *Manager) prepareContainer(ctx context.Context, ctr *container, c *ContainerConfig, box Sandbox, img images.Resolved) (undo func(), bundle string, err error) {
	id := ctr.rec.ID
	dataDir, runDir := m.containerDataDir(id), m.containerRunDir(id)
	undo = func() {
		m.releaseRootfs(id)
		_ = os.RemoveAll(runDir)
		_ = os.RemoveAll(dataDir)
		m.mu.Lock()
		delete(m.containers, id)
		m.mu.Unlock()
	}
	if err := os.MkdirAll(dataDir, 0o711); err != nil {
		return undo, "", err
	}
	if c.TerminationMessagePath != "" {
		ctr.rec.TerminationLog = filepath.Join(dataDir, "termination-log")
	}
	if err := m.saveContainer(&ctr.rec); err != nil {
		return undo, "", err
	}
	m.mu.Lock()
	m.containers[id] = ctr
	m.mu.Unlock()

	lowers, err := m.opts.Snapshots.Lowers(ctx, img.Layers, img.DiffIDs)
	if err != nil {
		return undo, "", err
	}
	rootfs := filepath.Join(runDir, "rootfs")
	if err := snapshot.Mount(rootfs, lowers, filepath.Join(dataDir, "upper"), filepath.Join(dataDir, "work")); err != nil {
		return undo, "", err
	}
	if ctr.rec.TerminationLog != "" {
		// World-writable, as the kubelet makes it: any user may write its
		// last words.
		if err := os.WriteFile(ctr.rec.TerminationLog, nil, 0o666); err != nil {
			return undo, "", err
		}
		if err := os.Chmod(ctr.rec.TerminationLog, 0o666); err != nil {
			return undo, "", err
		}
	}
	pidNS, freshPID := m.podPIDNamespace(ctx, box, id)
	ctr.freshPIDNS = freshPID
	cfg, err := ociConfig(specInput{id: id, rootfs: rootfs, c: c, image: img.Config.Config.ImageConfig, sb: box, termLog: ctr.rec.TerminationLog, pidNS: pidNS})
	if err != nil {
		return undo, "", err
	}
	if err := mkdirIn(rootfs, cfg.Cwd); err != nil {
		return undo, "", err
	}
	spec, err := oci.Spec(cfg)
	if err != nil {
		return undo, "", err
	}
	ctr.rec.User, ctr.rec.Env, ctr.rec.Cwd = spec.Process.User, spec.Process.Env, spec.Process.Cwd
	ctr.rec.NoNewPrivileges = spec.Process.NoNewPrivileges
	bundle = filepath.Join(runDir, "bundle")
	if err := os.MkdirAll(bundle, 0o700); err != nil {
		return undo, "", err
	}
	b, err := json.Marshal(spec)
	if err != nil {
		return undo, "", err
	}
	// RunDir is not durable anyway: a plain write, no fsync.
	if err := os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o600); err != nil {
		return undo, "", err
	}
	return undo, bundle, nil
}

// podPIDNamespace is the PID namespace a new container of the pod joins:
// "" for a new one of its own. A pod that shares one uses its first
// running container's, through the sandbox's PID namespace file; when no
// container of the pod runs, the namespace is dead (it ended with its
// first process) or was never made, and the new container makes it
// (fresh). Call with the pod's lock held.
func (m *Manager) podPIDNamespace(ctx context.Context, box Sandbox, self string) (join string, fresh bool) {
	if !box.SharePIDNS {
		return "", false
	}
	for _, o := range m.podContainers(box.PodUID) {
		if o.rec.ID == self {
			continue
		}
		o.mu.Lock()
		running := o.rec.State == stateRunning
		o.mu.Unlock()
		if !running {
			continue
		}
		st, err := m.opts.Runtime.State(ctx, o.rec.ID)
		if err != nil || !st.Running {
			continue
		}
		if isNamespace(box.PIDNS, unix.CLONE_NEWPID) {
			return box.PIDNS, false
		}
		// The file could not be bound when that container started.
		if err := bindPIDNamespace(st.Pid, box.PIDNS); err == nil {
			return box.PIDNS, false
		}
	}
	return "", true
}

// bindPIDNamespace binds the PID namespace of process pid to path
// (replacing what was there), making sure it was that process's: a pidfd
// taken before and checked after the bind rules out a reused pid.
func bindPIDNamespace(pid int, path string) error {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return fmt.Errorf("pidfd of %d: %w", pid, err)
	}
	defer unix.Close(fd)
	if err := removeNSFile(path); err != nil {
		return err
	}
	if err := bindNS(fmt.Sprintf("/proc/%d/ns/pid", pid), path); err != nil {
		return err
	}
	if err := unix.PidfdSendSignal(fd, 0, nil, 0); err != nil {
		_ = removeNSFile(path)
		return fmt.Errorf("process %d exited: %w", pid, err)
	}
	return nil
}

// stillRunning asks the runtime whether a container recorded as running
// still is (it may have exited unobserved).
func (m *Manager) stillRunning(ctx context.Context, o *container) bool {
	st, err := m.opts.Runtime.State(ctx, o.rec.ID)
	return err == nil && st.Running
}

// releaseRootfs unmounts the container's root filesystem.
func (m *Manager) releaseRootfs(id string) {
	if err := snapshot.Unmount(filepath.Join(m.containerRunDir(id), "rootfs")); err != nil {
		m.log.Warn("unmount rootfs", "id", id, "err", err)
	}
}

// mkdirIn creates dir inside rootfs without following symlinks out of it.
func mkdirIn(rootfs, dir string) error {
	p, err := securejoin.SecureJoin(rootfs, dir)
	if err != nil {
		return fmt.Errorf("working directory %s: %w", dir, err)
	}
	if err := os.MkdirAll(p, 0o755); err != nil {
		return fmt.Errorf("working directory %s: %w", dir, err)
	}
	return nil
}

// podContainers are the pod's containers, in no order.
func (m *Manager) podContainers(podUID string) []*container {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []*container
	for _, c := range m.containers {
		if podUID == "" || c.rec.PodUID == podUID {
			out = append(out, c)
		}
	}
	return out
}

// lookup finds a container by ID.
func (m *Manager) lookup(id string) (*container, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c, ok := m.containers[id]
	if !ok {
		return nil, fmt.Errorf("container %q: %w", id, errdefs.ErrNotFound)
	}
	return c, nil
}
