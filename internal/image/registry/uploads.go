package registry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/opencontainers/go-digest"

	"skiff.dev/skiff/internal/image/content"
)

var uploadIDRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

func uploadLocation(name, id string) string { return "/v2/" + name + "/blobs/uploads/" + id }

func blobLocation(name string, d digest.Digest) string { return "/v2/" + name + "/blobs/" + d.String() }

func uploadUnknown(id string) error {
	return apiErr(http.StatusNotFound, codeBlobUploadUnknown, "upload %q unknown", id)
}

// blobCreated answers 201 for a blob now in repository name.
func blobCreated(w http.ResponseWriter, name string, d digest.Digest) {
	h := w.Header()
	h.Set("Location", blobLocation(name, d))
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
}

// uploadAccepted answers with an upload's location and received range.
func uploadAccepted(w http.ResponseWriter, status int, name, id string, offset int64) {
	h := w.Header()
	h.Set("Location", uploadLocation(name, id))
	h.Set("Docker-Upload-UUID", id)
	// An empty upload reports 0-0, as distribution does.
	h.Set("Range", fmt.Sprintf("0-%d", max(offset-1, 0)))
	h.Set("Content-Length", "0")
	w.WriteHeader(status)
}

// startUpload handles POST: a cross-repository mount, a monolithic upload
// with ?digest=, or the start of a chunked upload.
func (rg *Registry) startUpload(w http.ResponseWriter, r *http.Request, name string) error {
	ctx := r.Context()
	q := r.URL.Query()
	if mount := q.Get("mount"); mount != "" {
		d, err := parseDigest(mount)
		if err != nil {
			return err
		}
		if from := q.Get("from"); from != "" && validName(from) == nil {
			if _, err := rg.blobInfo(ctx, from, d); err == nil {
				if err := rg.linkBlob(ctx, name, d); err != nil {
					return err
				}
				blobCreated(w, name, d)
				return nil
			}
		}
		// Cannot mount: fall back to an upload session, as the spec says.
	}
	if dg := q.Get("digest"); dg != "" {
		d, err := parseDigest(dg)
		if err != nil {
			return err
		}
		if _, err := rg.store.WriteBlob(ctx, r.Body, 0, d); errors.Is(err, content.ErrInvalid) {
			return digestMismatch(d, err)
		} else if err != nil {
			return err
		}
		if err := rg.linkBlob(ctx, name, d); err != nil {
			return err
		}
		blobCreated(w, name, d)
		return nil
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	mw, err := rg.store.Writer(ctx, uploadMarkerRef(name, id))
	if err != nil {
		return err
	}
	_, err = mw.Write([]byte{1})
	if cerr := mw.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = rg.store.Abort(ctx, uploadMarkerRef(name, id))
		return err
	}
	uploadAccepted(w, http.StatusAccepted, name, id, 0)
	return nil
}

func digestMismatch(d digest.Digest, err error) error {
	return apiErr(http.StatusBadRequest, codeDigestInvalid, "content does not match digest %s: %v", d, err).withDetail(map[string]string{"digest": d.String()})
}

// checkUpload reports whether upload id of repository name exists: its
// marker ingest holds one byte. Probing a missing marker creates an empty
// one, which is removed again.
func (rg *Registry) checkUpload(ctx context.Context, name, id string) error {
	if !uploadIDRE.MatchString(id) {
		return uploadUnknown(id)
	}
	ref := uploadMarkerRef(name, id)
	mw, err := rg.openIngest(ctx, ref)
	if err != nil {
		return err
	}
	n := mw.Offset()
	if err := mw.Close(); err != nil {
		return err
	}
	if n == 0 {
		_ = retry(ctx, func() error { return rg.store.Abort(ctx, ref) })
		return uploadUnknown(id)
	}
	return nil
}

// openUpload checks that the upload exists and opens its data ingest.
func (rg *Registry) openUpload(ctx context.Context, name, id string) (content.Writer, error) {
	if err := rg.checkUpload(ctx, name, id); err != nil {
		return nil, err
	}
	return rg.openIngest(ctx, uploadRef(name, id))
}

// appendChunk writes r's body to the upload. With a Content-Range the chunk
// must start where the upload ends (else 416) and is all-or-nothing;
// without one the body is streamed on.
func appendChunk(w http.ResponseWriter, r *http.Request, cw content.Writer, name, id string) error {
	start := cw.Offset()
	want := int64(-1)
	if cr := r.Header.Get("Content-Range"); cr != "" {
		s, e, ok := parseContentRange(cr)
		if !ok || s != start || e < s-1 {
			w.Header().Set("Location", uploadLocation(name, id))
			w.Header().Set("Range", fmt.Sprintf("0-%d", max(start-1, 0)))
			return apiErr(http.StatusRequestedRangeNotSatisfiable, codeBlobUploadInvalid,
				"chunk %q does not continue the upload, which has %d bytes", cr, start)
		}
		want = e - s + 1
		if r.ContentLength >= 0 && r.ContentLength != want {
			return apiErr(http.StatusBadRequest, codeSizeInvalid, "Content-Range %q covers %d bytes, Content-Length is %d", cr, want, r.ContentLength)
		}
	}
	n, err := copyBuffered(cw, r.Body)
	if err == nil && want >= 0 && n != want {
		err = apiErr(http.StatusBadRequest, codeSizeInvalid, "chunk has %d bytes, Content-Range says %d", n, want)
	}
	if err != nil && want >= 0 {
		if terr := cw.Truncate(start); terr != nil {
			return errors.Join(err, terr)
		}
	}
	return err
}

// parseContentRange accepts "start-end" as the spec writes it, with an
// optional "bytes " or "bytes=" prefix and "/total" suffix.
func parseContentRange(s string) (start, end int64, ok bool) {
	s = strings.TrimSpace(s)
	s = strings.TrimPrefix(s, "bytes")
	s = strings.TrimLeft(s, " =")
	s, _, _ = strings.Cut(s, "/")
	a, b, found := strings.Cut(s, "-")
	if !found {
		return 0, 0, false
	}
	start, err1 := strconv.ParseInt(a, 10, 64)
	end, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || start < 0 {
		return 0, 0, false
	}
	return start, end, true
}

func (rg *Registry) patchUpload(w http.ResponseWriter, r *http.Request, name, id string) error {
	ctx := r.Context()
	cw, err := rg.openUpload(ctx, name, id)
	if err != nil {
		return err
	}
	defer cw.Close()
	if err := appendChunk(w, r, cw, name, id); err != nil {
		return err
	}
	uploadAccepted(w, http.StatusAccepted, name, id, cw.Offset())
	return nil
}

func (rg *Registry) uploadStatus(w http.ResponseWriter, r *http.Request, name, id string) error {
	cw, err := rg.openUpload(r.Context(), name, id)
	if err != nil {
		return err
	}
	off := cw.Offset()
	if err := cw.Close(); err != nil {
		return err
	}
	uploadAccepted(w, http.StatusNoContent, name, id, off)
	return nil
}

// finishUpload handles PUT ?digest=: an optional last chunk, then the
// digest-checked commit. A mismatch drops the upload entirely.
func (rg *Registry) finishUpload(w http.ResponseWriter, r *http.Request, name, id string) error {
	ctx := r.Context()
	dg := r.URL.Query().Get("digest")
	if dg == "" {
		return apiErr(http.StatusBadRequest, codeDigestInvalid, "digest query parameter required")
	}
	d, err := parseDigest(dg)
	if err != nil {
		return err
	}
	cw, err := rg.openUpload(ctx, name, id)
	if err != nil {
		return err
	}
	defer cw.Close()
	if r.ContentLength != 0 {
		if err := appendChunk(w, r, cw, name, id); err != nil {
			return err
		}
	}
	cerr := cw.Commit(ctx, 0, d)
	switch {
	case cerr == nil || errors.Is(cerr, content.ErrAlreadyExists):
	case errors.Is(cerr, content.ErrInvalid):
		_ = cw.Close()
		rg.dropUpload(ctx, name, id)
		return digestMismatch(d, cerr)
	default:
		return cerr
	}
	if err := rg.linkBlob(ctx, name, d); err != nil {
		return err
	}
	_ = retry(ctx, func() error { return rg.store.Abort(ctx, uploadMarkerRef(name, id)) })
	blobCreated(w, name, d)
	return nil
}

// dropUpload removes an upload's data and marker.
func (rg *Registry) dropUpload(ctx context.Context, name, id string) {
	_ = retry(ctx, func() error { return rg.store.Abort(ctx, uploadRef(name, id)) })
	_ = retry(ctx, func() error { return rg.store.Abort(ctx, uploadMarkerRef(name, id)) })
}

func (rg *Registry) cancelUpload(w http.ResponseWriter, r *http.Request, name, id string) error {
	ctx := r.Context()
	if err := rg.checkUpload(ctx, name, id); err != nil {
		return err
	}
	rg.dropUpload(ctx, name, id)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusNoContent)
	return nil
}
