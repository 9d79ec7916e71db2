package registry

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"skiff.dev/skiff/internal/image/content"
)

// blobInfo returns the size of blob d if repository name holds it: it was
// uploaded or mounted there, or it is one of name's manifests.
func (rg *Registry) blobInfo(ctx context.Context, name string, d digest.Digest) (content.Info, error) {
	unknown := apiErr(http.StatusNotFound, codeBlobUnknown, "blob %s unknown to repository %s", d, name).withDetail(map[string]string{"digest": d.String()})
	if !rg.hasRef(ctx, blobRef(name, d)) && !rg.hasRef(ctx, manifestRef(name, d)) {
		return content.Info{}, unknown
	}
	info, err := rg.store.Info(ctx, d)
	if errors.Is(err, content.ErrNotFound) {
		return content.Info{}, unknown
	}
	return info, err
}

func (rg *Registry) hasRef(ctx context.Context, ref string) bool {
	_, err := rg.store.Ref(ctx, ref)
	return err == nil
}

// linkBlob records that repository name holds blob d.
func (rg *Registry) linkBlob(ctx context.Context, name string, d digest.Digest) error {
	return rg.store.SetRef(ctx, blobRef(name, d), ocispec.Descriptor{MediaType: "application/octet-stream", Digest: d})
}

func (rg *Registry) getBlob(w http.ResponseWriter, r *http.Request, name, arg string) error {
	ctx := r.Context()
	d, err := parseDigest(arg)
	if err != nil {
		return err
	}
	info, err := rg.blobInfo(ctx, name, d)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Docker-Content-Digest", d.String())
	h.Set("Content-Type", "application/octet-stream")
	h.Set("ETag", `"`+d.String()+`"`)
	h.Set("Accept-Ranges", "bytes")
	if r.Method == http.MethodHead {
		h.Set("Content-Length", strconv.FormatInt(info.Size, 10))
		w.WriteHeader(http.StatusOK)
		return nil
	}
	if r.Header.Get("Range") != "" {
		// Partial reads cannot be verified; they are for resuming clients,
		// which verify the whole blob themselves.
		ra, err := rg.store.ReaderAt(ctx, ocispec.Descriptor{Digest: d})
		if err != nil {
			return err
		}
		defer ra.Close()
		http.ServeContent(w, r, "", time.Time{}, io.NewSectionReader(ra, 0, ra.Size()))
		return nil
	}
	rc, err := rg.store.Open(ctx, d)
	if err != nil {
		return err
	}
	defer rc.Close()
	h.Set("Content-Length", strconv.FormatInt(info.Size, 10))
	w.WriteHeader(http.StatusOK)
	if _, err := copyBuffered(w, rc); err != nil {
		if errors.Is(err, content.ErrInvalid) {
			rg.log.Error("corrupt blob refused", "digest", d, "err", err)
		}
		// The status is sent: cut the connection so the client cannot take
		// a short or corrupt body for the blob.
		panic(http.ErrAbortHandler)
	}
	return nil
}

func (rg *Registry) deleteBlob(w http.ResponseWriter, r *http.Request, name, arg string) error {
	d, err := parseDigest(arg)
	if err != nil {
		return err
	}
	if err := rg.store.DeleteRef(r.Context(), blobRef(name, d)); errors.Is(err, content.ErrNotFound) {
		return apiErr(http.StatusNotFound, codeBlobUnknown, "blob %s unknown to repository %s", d, name).withDetail(map[string]string{"digest": d.String()})
	} else if err != nil {
		return err
	}
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusAccepted)
	return nil
}
