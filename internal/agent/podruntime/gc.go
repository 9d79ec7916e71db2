package podruntime

import (
	"context"
	"errors"
	"os"
	"path/filepath"
)

// collectGarbage finishes or undoes what a crash interrupted, from the
// records Start loaded: sandboxes still being created are torn down,
// containers still being created are adopted if the runtime runs them
// and removed otherwise, and kernel state or directories that no record
// claims (a crash before the intent was written) are removed. Problems
// are logged: a leftover must not keep the agent from starting.
func (m *Manager) collectGarbage(ctx context.Context) {
	m.mu.Lock()
	sandboxes := make(map[string]*sandbox, len(m.sandboxes))
	for _, sb := range m.sandboxes {
		sandboxes[sb.rec.ID] = sb
	}
	containers := make(map[string]*container, len(m.containers))
	for id, c := range m.containers {
		containers[id] = c
	}
	m.mu.Unlock()

	for id, c := range containers {
		if c.rec.State != stateCreating {
			continue
		}
		st, err := m.opts.Runtime.State(ctx, id)
		switch {
		case err == nil && st.Running:
			m.log.Info("adopting a container whose start was not recorded", "id", id)
			c.rec.State, c.rec.StartedAt = stateRunning, c.rec.CreatedAt
			if err := m.saveContainer(&c.rec); err != nil {
				m.log.Warn("save container", "id", id, "err", err)
			}
		case err == nil && st.Exit != nil:
			c.rec.State, c.rec.StartedAt = stateRunning, c.rec.CreatedAt
			m.recordExit(c, *st.Exit, "")
		default:
			m.log.Info("removing a container whose creation was interrupted", "id", id)
			if err := m.Remove(ctx, id); err != nil {
				m.log.Warn("remove interrupted container", "id", id, "err", err)
			}
			delete(containers, id)
		}
	}
	for id, sb := range sandboxes {
		if sb.rec.State == stateCreating {
			m.log.Info("removing a sandbox whose creation was interrupted", "sandbox", id)
			if err := m.teardownSandbox(ctx, sb); err != nil {
				m.log.Warn("remove interrupted sandbox", "sandbox", id, "err", err)
			}
			delete(sandboxes, id)
		}
	}

	// Endpoints on the pods network that no sandbox claims.
	for _, ep := range m.opts.Network.Endpoints(m.networkID) {
		if _, ok := sandboxes[ep.ContainerID]; !ok {
			m.log.Info("detaching an endpoint no sandbox claims", "endpoint", ep.ContainerID, "ip", ep.IP)
			if err := m.opts.Network.Detach(ctx, m.networkID, ep.ContainerID); err != nil {
				m.log.Warn("detach leftover endpoint", "endpoint", ep.ContainerID, "err", err)
			}
		}
	}
	// Sandbox directories without a record.
	m.forEachUnclaimed(m.sandboxRunRoot(), func(id string) bool { _, ok := sandboxes[id]; return ok }, func(dir string) error {
		p := m.sandboxPaths(filepath.Base(dir))
		var errs []error
		for _, f := range []string{p.net, p.ipc, p.uts, p.pid} {
			errs = append(errs, removeNSFile(f))
		}
		errs = append(errs, unmountAll(p.shm))
		if err := errors.Join(errs...); err != nil {
			return err
		}
		return os.RemoveAll(dir)
	})
	// Container directories without a record.
	claimed := func(id string) bool { _, ok := containers[id]; return ok }
	m.forEachUnclaimed(m.containerRunRoot(), claimed, func(dir string) error {
		if err := unmountAll(filepath.Join(dir, "rootfs")); err != nil {
			return err
		}
		return os.RemoveAll(dir)
	})
	m.forEachUnclaimed(m.containerDataRoot(), claimed, os.RemoveAll)
}

// forEachUnclaimed calls remove for each entry of root whose name no
// record claims. The Manager owns these directories alone (one Manager per
// DataDir and RunDir), and Start runs before any operation.
func (m *Manager) forEachUnclaimed(root string, claimed func(id string) bool, remove func(dir string) error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		m.log.Warn("garbage collection", "dir", root, "err", err)
		return
	}
	for _, e := range entries {
		if claimed(e.Name()) {
			continue
		}
		dir := filepath.Join(root, e.Name())
		m.log.Info("removing a leftover", "path", dir)
		if err := remove(dir); err != nil {
			m.log.Warn("remove leftover", "path", dir, "err", err)
		}
	}
}
