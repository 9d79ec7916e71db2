// Package errdefs holds the error kinds every Skiff component wraps its errors
// in (with %w and identifying context). Only the edges — the Kubernetes API
// server, the Docker Engine API, the registry, the CLI — translate them into
// wire codes. Any package may import it; it imports nothing of Skiff's.
package errdefs

import (
	"errors"
	"strings"
)

var (
	// ErrNotFound: the named thing does not exist.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: something with that name or content already exists.
	ErrAlreadyExists = errors.New("already exists")
	// ErrConflict: the request conflicts with the current state (a name in
	// use, an image used by a container, a running container removed
	// without force).
	ErrConflict = errors.New("conflict")
	// ErrInvalid: bad input; the message says what and where.
	ErrInvalid = errors.New("invalid")
	// ErrUnavailable: the operation cannot be done now or on this machine.
	ErrUnavailable = errors.New("unavailable")
	// ErrNotModified: nothing to do (starting a running container).
	ErrNotModified = errors.New("not modified")
	// ErrUnauthorized: the credentials are missing or rejected.
	ErrUnauthorized = errors.New("unauthorized")
)

// Is reports whether err is of kind, for callers that prefer a function.
func Is(err, kind error) bool { return errors.Is(err, kind) }

// Message is err's text for people at an edge: without the trailing
// ": <kind>" that wrapping one of this package's kinds leaves.
func Message(err error) string {
	msg := err.Error()
	for changed := true; changed; {
		changed = false
		for _, k := range []error{ErrNotFound, ErrAlreadyExists, ErrConflict, ErrInvalid, ErrUnavailable, ErrNotModified, ErrUnauthorized} {
			if s, ok := strings.CutSuffix(msg, ": "+k.Error()); ok && errors.Is(err, k) {
				msg, changed = s, true
			}
		}
	}
	return msg
}
