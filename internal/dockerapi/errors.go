package dockerapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/moby/moby/api/types/common"

	"skiff.dev/skiff/internal/errdefs"
)

// errNotImplemented marks endpoints Skiff does not serve (501).
var errNotImplemented = errors.New("not implemented")

// statusOf maps an error's kind to the status dockerd would answer.
func statusOf(err error) int {
	var tooLarge *http.MaxBytesError
	switch {
	case errors.Is(err, errdefs.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, errdefs.ErrConflict), errors.Is(err, errdefs.ErrAlreadyExists):
		return http.StatusConflict
	case errors.As(err, &tooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, errdefs.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, errdefs.ErrNotModified):
		return http.StatusNotModified
	case errors.Is(err, errdefs.ErrUnavailable):
		return http.StatusServiceUnavailable
	case errors.Is(err, errdefs.ErrUnauthorized):
		return http.StatusUnauthorized
	case errors.Is(err, errNotImplemented):
		return http.StatusNotImplemented
	default:
		return http.StatusInternalServerError
	}
}

// writeError answers Docker's error body. 304 has no body.
func writeError(w http.ResponseWriter, status int, msg string) {
	if status == http.StatusNotModified {
		w.WriteHeader(status)
		return
	}
	writeJSON(w, status, &common.ErrorResponse{Message: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// requestError is a client mistake: its message is exactly what the
// client sees, its kind is errdefs.ErrInvalid.
type requestError struct{ msg string }

func (e *requestError) Error() string { return e.msg }
func (e *requestError) Unwrap() error { return errdefs.ErrInvalid }

func invalidf(format string, args ...any) error {
	return &requestError{msg: fmt.Sprintf(format, args...)}
}

// notImplementedError keeps the message readable ("... is not
// implemented by skiff") while carrying errNotImplemented.
type notImplementedError struct{ what string }

func (e *notImplementedError) Error() string {
	return e.what + " is not implemented by this engine"
}
func (e *notImplementedError) Unwrap() error { return errNotImplemented }

func notImplemented(what string) handlerFunc {
	return func(http.ResponseWriter, *http.Request, params) error {
		return &notImplementedError{what: what}
	}
}
