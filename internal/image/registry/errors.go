package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"skiff.dev/skiff/internal/image/content"
)

// Error codes of the distribution spec (and two of distribution's own).
const (
	codeBlobUnknown         = "BLOB_UNKNOWN"
	codeBlobUploadInvalid   = "BLOB_UPLOAD_INVALID"
	codeBlobUploadUnknown   = "BLOB_UPLOAD_UNKNOWN"
	codeDigestInvalid       = "DIGEST_INVALID"
	codeManifestBlobUnknown = "MANIFEST_BLOB_UNKNOWN"
	codeManifestInvalid     = "MANIFEST_INVALID"
	codeManifestUnknown     = "MANIFEST_UNKNOWN"
	codeNameInvalid         = "NAME_INVALID"
	codeNameUnknown         = "NAME_UNKNOWN"
	codeSizeInvalid         = "SIZE_INVALID"
	codeUnauthorized        = "UNAUTHORIZED"
	codeUnsupported         = "UNSUPPORTED"
	codeTooManyRequests     = "TOOMANYREQUESTS"
	codePaginationInvalid   = "PAGINATION_NUMBER_INVALID"
	codeUnknown             = "UNKNOWN"
)

// apiError is an error as the client sees it.
type apiError struct {
	status  int
	code    string
	message string
	detail  any
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func apiErr(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

func (e *apiError) withDetail(d any) *apiError { e.detail = d; return e }

type errorBody struct {
	Errors []errorEntry `json:"errors"`
}

type errorEntry struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

// toAPIError translates any error to what the client sees. Handlers map
// client-caused content-store errors themselves; what reaches here (e.g. a
// corrupt blob, ErrInvalid) is the server's fault, except a busy ingest.
func toAPIError(err error) *apiError {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, content.ErrUnavailable):
		return apiErr(http.StatusTooManyRequests, codeTooManyRequests, "%v", err)
	default:
		return apiErr(http.StatusInternalServerError, codeUnknown, "%v", err)
	}
}

func (rg *Registry) writeError(w http.ResponseWriter, r *http.Request, err error) {
	ae := toAPIError(err)
	if ae.status >= 500 {
		rg.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if ae.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="`+rg.realm+`"`)
	}
	b, _ := json.Marshal(errorBody{Errors: []errorEntry{{Code: ae.code, Message: ae.message, Detail: ae.detail}}})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", fmt.Sprint(len(b)))
	w.WriteHeader(ae.status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b)
	}
}
