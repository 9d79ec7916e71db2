package runtime

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"

	"skiff.dev/skiff/internal/errdefs"
	"skiff.dev/skiff/internal/runtime/shim/wire"
)

// errExited: the container's shim is gone after recording the exit
// (exit.json); callers read it or answer "not running".
var errExited = errors.New("container exited")

// notRunning turns errExited into the conflict callers see.
func notRunning(id string, err error) error {
	if errors.Is(err, errExited) {
		return fmt.Errorf("container %q is not running: %w", id, errdefs.ErrConflict)
	}
	return err
}

// dial connects to the container's shim. Without a shim it tells why:
// errExited, errdefs.ErrNotFound (no such container) or
// errdefs.ErrUnavailable (the shim is gone and recorded nothing).
func (r *Runtime) dial(ctx context.Context, id string) (*net.UnixConn, error) {
	if err := validID(id); err != nil {
		return nil, err
	}
	c, err := wire.Dial(ctx, filepath.Join(r.dir(id), wire.SocketName))
	if err == nil {
		return c, nil
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return nil, r.noShim(id, err)
}

func (r *Runtime) noShim(id string, cause error) error {
	if _, err := os.Stat(filepath.Join(r.dir(id), wire.ExitName)); err == nil {
		return errExited
	}
	if _, err := os.Stat(r.dir(id)); errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("container %q: %w", id, errdefs.ErrNotFound)
	}
	if r.shimGone(id) {
		return fmt.Errorf("container %q: its shim is gone without recording an exit (%v): %w", id, cause, errdefs.ErrUnavailable)
	}
	return fmt.Errorf("container %q: its shim does not answer (%v): %w", id, cause, errdefs.ErrUnavailable)
}

// call does a unary operation.
func (r *Runtime) call(ctx context.Context, id string, req wire.Request) (*wire.Response, error) {
	c, err := r.dial(ctx, id)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return r.roundTrip(ctx, id, c, req)
}

// roundTrip sends req on c and reads the response; ctx interrupts it.
func (r *Runtime) roundTrip(ctx context.Context, id string, c *net.UnixConn, req wire.Request) (*wire.Response, error) {
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	var resp wire.Response
	err := wire.WriteJSON(c, wire.KindRequest, req)
	if err == nil {
		err = wire.ReadJSON(c, wire.KindResponse, &resp)
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// The shim may have exited between accepting and answering.
		return nil, r.noShim(id, err)
	}
	if err := resp.Err(); err != nil {
		return nil, err
	}
	return &resp, nil
}
