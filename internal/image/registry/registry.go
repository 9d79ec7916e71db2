package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/opencontainers/go-digest"

	"skiff.dev/skiff/internal/image/content"
)

// RefPrefix starts the name of every content-store reference the registry
// keeps. A double slash never appears in an image reference, so these names
// cannot collide with the local image store's.
const RefPrefix = "registry//"

// MaxManifestSize is the largest manifest or index accepted (the spec's
// recommended limit).
const MaxManifestSize = content.MaxManifestSize

// Authorizer decides whether r may proceed; write is true for requests that
// change state. A non-nil error denies the request with 401.
type Authorizer func(r *http.Request, write bool) error

// Option configures a Registry.
type Option func(*Registry)

// WithAuthorizer guards every request with fn (nil: allow everything).
func WithAuthorizer(fn Authorizer) Option { return func(rg *Registry) { rg.authorize = fn } }

// WithRealm sets the realm announced in WWW-Authenticate (default "skiff").
func WithRealm(realm string) Option { return func(rg *Registry) { rg.realm = realm } }

// WithLogger sets the logger for server-side failures (default: discard).
func WithLogger(l *slog.Logger) Option { return func(rg *Registry) { rg.log = l } }

// Registry is an http.Handler serving the /v2/ API from a content store.
type Registry struct {
	store     *content.Store
	authorize Authorizer
	realm     string
	log       *slog.Logger
}

var _ http.Handler = (*Registry)(nil)

// New returns a registry over store. It does no I/O.
func New(store *content.Store, opts ...Option) *Registry {
	rg := &Registry{store: store, realm: "skiff", log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(rg)
	}
	rg.log = rg.log.With("component", "registry")
	return rg
}

var (
	nameRE = regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`)
	tagRE  = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`)
)

const maxNameLen = 255

type routeKind int

const (
	routeTags routeKind = iota + 1
	routeManifest
	routeReferrers
	routeUploadStart
	routeUpload
	routeBlob
)

// parseRoute splits the path after /v2/ into repository name, endpoint and
// argument, matching from the end since names contain slashes.
func parseRoute(rest string) (kind routeKind, name, arg string, ok bool) {
	segs := strings.Split(rest, "/")
	n := len(segs)
	join := func(k int) string { return strings.Join(segs[:n-k], "/") }
	switch {
	case n >= 3 && segs[n-2] == "tags" && segs[n-1] == "list":
		return routeTags, join(2), "", true
	case n >= 2 && segs[n-2] == "manifests":
		return routeManifest, join(2), segs[n-1], true
	case n >= 2 && segs[n-2] == "referrers":
		return routeReferrers, join(2), segs[n-1], true
	case n >= 4 && segs[n-3] == "blobs" && segs[n-2] == "uploads":
		if segs[n-1] == "" {
			return routeUploadStart, join(3), "", true
		}
		return routeUpload, join(3), segs[n-1], true
	case n >= 3 && segs[n-2] == "blobs" && segs[n-1] == "uploads":
		return routeUploadStart, join(2), "", true
	case n >= 2 && segs[n-2] == "blobs":
		return routeBlob, join(2), segs[n-1], true
	}
	return 0, "", "", false
}

func validName(name string) error {
	if len(name) > maxNameLen || !nameRE.MatchString(name) {
		return apiErr(http.StatusBadRequest, codeNameInvalid, "invalid repository name %q", name).withDetail(map[string]string{"name": name})
	}
	return nil
}

// ServeHTTP implements http.Handler.
func (rg *Registry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	if err := rg.serve(w, r); err != nil {
		rg.writeError(w, r, err)
	}
}

func methodNotAllowed(r *http.Request) error {
	return apiErr(http.StatusMethodNotAllowed, codeUnsupported, "method %s not allowed on %s", r.Method, r.URL.Path)
}

func (rg *Registry) serve(w http.ResponseWriter, r *http.Request) error {
	p := r.URL.Path
	if p != "/v2" && !strings.HasPrefix(p, "/v2/") {
		return apiErr(http.StatusNotFound, codeUnsupported, "not a registry endpoint: %s", p)
	}
	write := r.Method != http.MethodGet && r.Method != http.MethodHead
	if rg.authorize != nil {
		if err := rg.authorize(r, write); err != nil {
			return apiErr(http.StatusUnauthorized, codeUnauthorized, "authentication required: %v", err)
		}
	}
	rest := strings.TrimPrefix(strings.TrimPrefix(p, "/v2"), "/")
	switch rest {
	case "":
		if write {
			return methodNotAllowed(r)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "2")
		w.WriteHeader(http.StatusOK)
		if r.Method == http.MethodGet {
			_, _ = w.Write([]byte("{}"))
		}
		return nil
	case "_catalog":
		if r.Method != http.MethodGet {
			return methodNotAllowed(r)
		}
		return rg.catalog(w, r)
	}
	kind, name, arg, ok := parseRoute(rest)
	if !ok {
		return apiErr(http.StatusNotFound, codeUnsupported, "not a registry endpoint: %s", p)
	}
	if err := validName(name); err != nil {
		return err
	}
	m := r.Method
	switch {
	case kind == routeTags && m == http.MethodGet:
		return rg.tagsList(w, r, name)
	case kind == routeManifest && (m == http.MethodGet || m == http.MethodHead):
		return rg.getManifest(w, r, name, arg)
	case kind == routeManifest && m == http.MethodPut:
		return rg.putManifest(w, r, name, arg)
	case kind == routeManifest && m == http.MethodDelete:
		return rg.deleteManifest(w, r, name, arg)
	case kind == routeReferrers && m == http.MethodGet:
		return rg.referrers(w, r, name, arg)
	case kind == routeUploadStart && m == http.MethodPost:
		return rg.startUpload(w, r, name)
	case kind == routeUpload && m == http.MethodPatch:
		return rg.patchUpload(w, r, name, arg)
	case kind == routeUpload && m == http.MethodPut:
		return rg.finishUpload(w, r, name, arg)
	case kind == routeUpload && m == http.MethodGet:
		return rg.uploadStatus(w, r, name, arg)
	case kind == routeUpload && m == http.MethodDelete:
		return rg.cancelUpload(w, r, name, arg)
	case kind == routeBlob && (m == http.MethodGet || m == http.MethodHead):
		return rg.getBlob(w, r, name, arg)
	case kind == routeBlob && m == http.MethodDelete:
		return rg.deleteBlob(w, r, name, arg)
	}
	return methodNotAllowed(r)
}

// Reference names in the content store.

func tagRef(name, tag string) string                  { return RefPrefix + name + ":" + tag }
func manifestRef(name string, d digest.Digest) string { return RefPrefix + name + "@" + d.String() }
func blobRef(name string, d digest.Digest) string     { return RefPrefix + name + "#" + d.String() }

// Ingest names of an upload's data and of its existence marker.
func uploadRef(name, id string) string       { return RefPrefix + "upload/" + name + "/" + id }
func uploadMarkerRef(name, id string) string { return RefPrefix + "upload-marker/" + name + "/" + id }

// parseDigest parses a digest from the client; a bad one is DIGEST_INVALID.
func parseDigest(s string) (digest.Digest, error) {
	d, err := digest.Parse(s)
	if err != nil {
		return "", apiErr(http.StatusBadRequest, codeDigestInvalid, "invalid digest %q: %v", s, err).withDetail(map[string]string{"digest": s})
	}
	return d, nil
}

// retry runs fn until it stops failing with content.ErrUnavailable (an
// ingest briefly held by another request), ctx ends, or a few seconds pass.
func retry(ctx context.Context, fn func() error) error {
	delay := time.Millisecond
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := fn()
		if !errors.Is(err, content.ErrUnavailable) || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (%v)", err, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(2*delay, 50*time.Millisecond)
	}
}

func (rg *Registry) openIngest(ctx context.Context, ref string) (content.Writer, error) {
	var w content.Writer
	err := retry(ctx, func() (err error) {
		w, err = rg.store.Writer(ctx, ref)
		return err
	})
	return w, err
}

// copyBufs holds 1 MiB copy buffers: fewer syscalls than io.Copy's 32 KiB.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 1<<20); return &b }}

// copyBuffered copies src to dst through a pooled buffer (hiding ReadFrom
// and WriteTo so the buffer is really used).
func copyBuffered(dst io.Writer, src io.Reader) (int64, error) {
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	return io.CopyBuffer(struct{ io.Writer }{dst}, struct{ io.Reader }{src}, *bp)
}
