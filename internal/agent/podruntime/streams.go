package podruntime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/opencontainers/cgroups"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"skiff.dev/skiff/internal/errdefs"
	"skiff.dev/skiff/internal/network/netns"
	"skiff.dev/skiff/internal/runtime"
)

// Exec runs cmd in the running container as its own process runs (user,
// environment, working directory, capabilities, no_new_privs), streams
// its stdio and returns its exit code. With tty it gets a terminal sized
// by resize ([0] width, [1] height); all output is then stdout. A missing
// executable is an error with libcontainer's message; a container that
// does not run is errdefs.ErrConflict.
func (m *Manager) Exec(ctx context.Context, containerID string, cmd []string, s runtime.Streams, tty bool, resize <-chan [2]uint16) (int, error) {
	if len(cmd) == 0 {
		return 0, fmt.Errorf("exec in container %s: no command: %w", containerID, errdefs.ErrInvalid)
	}
	c, err := m.lookup(containerID)
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	m.refresh(ctx, c)
	running := c.rec.State == stateRunning
	proc := specs.Process{
		Terminal:        tty,
		User:            c.rec.User,
		Args:            slices.Clone(cmd),
		Env:             slices.Clone(c.rec.Env),
		Cwd:             c.rec.Cwd,
		NoNewPrivileges: c.rec.NoNewPrivileges,
	}
	c.mu.Unlock()
	if !running {
		return 0, fmt.Errorf("container %s is not running: %w", containerID, errdefs.ErrConflict)
	}
	if tty && !slices.ContainsFunc(proc.Env, func(kv string) bool { return strings.HasPrefix(kv, "TERM=") }) {
		proc.Env = append(proc.Env, "TERM=xterm")
	}
	return m.opts.Runtime.Exec(ctx, containerID, runtime.ExecRequest{Process: proc, Streams: s, Resize: resize})
}

// Attach connects s to the running container's stdio (stdin only if it
// was created with Stdin); see runtime.Runtime.Attach.
func (m *Manager) Attach(ctx context.Context, containerID string, s runtime.Streams) error {
	if _, err := m.lookup(containerID); err != nil {
		return err
	}
	return m.opts.Runtime.Attach(ctx, containerID, s)
}

// Resize sets the size of the running container's terminal, for an
// attach to a container created with TTY (a no-op without one).
func (m *Manager) Resize(ctx context.Context, containerID string, width, height uint16) error {
	if _, err := m.lookup(containerID); err != nil {
		return err
	}
	return m.opts.Runtime.Resize(ctx, containerID, width, height)
}

// Stats samples the running container's cgroup.
func (m *Manager) Stats(ctx context.Context, containerID string) (*cgroups.Stats, error) {
	if _, err := m.lookup(containerID); err != nil {
		return nil, err
	}
	return m.opts.Runtime.Stats(ctx, containerID)
}

// PortForward connects stream to TCP port on the pod's loopback (dialled
// inside the pod's network namespace; the node's for hostNetwork pods),
// as the kubelet's port-forward does. It returns when the pod's side
// closes the connection or ctx ends; data stream sends after its end is
// read is passed on as a half-close.
func (m *Manager) PortForward(ctx context.Context, podUID string, port int32, stream io.ReadWriter) error {
	if port <= 0 || port > 65535 {
		return fmt.Errorf("port %d: %w", port, errdefs.ErrInvalid)
	}
	sb, ok := m.Sandbox(podUID)
	if !ok {
		return fmt.Errorf("pod %s has no sandbox: %w", podUID, errdefs.ErrNotFound)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(int(port)))
	var conn net.Conn
	dial := func() (err error) {
		conn, err = (&net.Dialer{}).DialContext(ctx, "tcp4", addr)
		return err
	}
	var err error
	if sb.NetNS == "" {
		err = dial()
	} else {
		// The socket keeps the namespace it was made in.
		err = netns.Do(sb.NetNS, dial)
	}
	if err != nil {
		return fmt.Errorf("port forward to %s in pod %s/%s: %v: %w", addr, sb.Namespace, sb.Name, err, errdefs.ErrUnavailable)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	go func() {
		_, _ = io.Copy(conn, stream)
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
	}()
	_, err = io.Copy(stream, conn)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}
