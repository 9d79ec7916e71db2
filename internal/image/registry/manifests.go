package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"skiff.dev/skiff/internal/image/content"
)

// subjectAnnotation, on a manifest's reference descriptor, records the
// manifest's subject so referrers are found without reading every manifest.
const subjectAnnotation = "dev.skiff.registry.subject"

// manifestKinds are the media types accepted on PUT.
var manifestKinds = map[string]bool{
	string(types.OCIManifestSchema1):    true,
	string(types.OCIImageIndex):         true,
	string(types.DockerManifestSchema2): true,
	string(types.DockerManifestList):    true,
}

// resolve returns the descriptor of reference (a tag or a digest) in name.
func (rg *Registry) resolve(ctx context.Context, name, reference string) (ocispec.Descriptor, error) {
	var ref string
	if strings.Contains(reference, ":") {
		d, err := parseDigest(reference)
		if err != nil {
			return ocispec.Descriptor{}, err
		}
		ref = manifestRef(name, d)
	} else {
		ref = tagRef(name, reference)
	}
	desc, err := rg.store.Ref(ctx, ref)
	if errors.Is(err, content.ErrNotFound) {
		return desc, manifestUnknown(name, reference)
	}
	return desc, err
}

func manifestUnknown(name, reference string) error {
	return apiErr(http.StatusNotFound, codeManifestUnknown, "manifest %s unknown to repository %s", reference, name).withDetail(map[string]string{"reference": reference})
}

func (rg *Registry) getManifest(w http.ResponseWriter, r *http.Request, name, reference string) error {
	ctx := r.Context()
	desc, err := rg.resolve(ctx, name, reference)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", desc.MediaType)
	h.Set("Docker-Content-Digest", desc.Digest.String())
	h.Set("ETag", `"`+desc.Digest.String()+`"`)
	h.Set("Content-Length", strconv.FormatInt(desc.Size, 10))
	if r.Method == http.MethodHead {
		w.WriteHeader(http.StatusOK)
		return nil
	}
	b, err := rg.store.ReadBlob(ctx, desc.Digest, MaxManifestSize)
	if errors.Is(err, content.ErrNotFound) {
		return manifestUnknown(name, reference)
	} else if err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	return nil
}

// parsedManifest holds the fields of an image manifest or index that the
// registry checks.
type parsedManifest struct {
	mediaType    string
	artifactType string
	subject      *ocispec.Descriptor
	annotations  map[string]string
	// children: config and layers, or an index's manifests.
	children []ocispec.Descriptor
}

func manifestInvalid(format string, args ...any) *apiError {
	return apiErr(http.StatusBadRequest, codeManifestInvalid, format, args...)
}

// parseManifest validates b as the manifest kind contentType names (or, if
// that is empty, its own mediaType field says).
func parseManifest(contentType string, b []byte) (parsedManifest, error) {
	var pm parsedManifest
	mt := contentType
	if mt != "" {
		if parsed, _, err := mime.ParseMediaType(mt); err == nil {
			mt = parsed
		}
	}
	var probe struct {
		SchemaVersion int    `json:"schemaVersion"`
		MediaType     string `json:"mediaType"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return pm, manifestInvalid("manifest is not valid JSON: %v", err)
	}
	if mt == "" {
		mt = probe.MediaType
	}
	if !manifestKinds[mt] {
		return pm, apiErr(http.StatusUnsupportedMediaType, codeUnsupported, "unsupported manifest media type %q", mt)
	}
	if probe.MediaType != "" && probe.MediaType != mt {
		return pm, manifestInvalid("mediaType %q does not match Content-Type %q", probe.MediaType, mt)
	}
	if probe.SchemaVersion != 2 {
		return pm, manifestInvalid("schemaVersion %d is not 2", probe.SchemaVersion)
	}
	pm.mediaType = mt
	if types.MediaType(mt).IsIndex() {
		var idx ocispec.Index
		if err := json.Unmarshal(b, &idx); err != nil {
			return pm, manifestInvalid("parse index: %v", err)
		}
		pm.artifactType, pm.subject, pm.annotations, pm.children = idx.ArtifactType, idx.Subject, idx.Annotations, idx.Manifests
	} else {
		var m ocispec.Manifest
		if err := json.Unmarshal(b, &m); err != nil {
			return pm, manifestInvalid("parse manifest: %v", err)
		}
		if m.Config.Digest == "" {
			return pm, manifestInvalid("manifest has no config")
		}
		pm.artifactType, pm.subject, pm.annotations = m.ArtifactType, m.Subject, m.Annotations
		if pm.artifactType == "" {
			pm.artifactType = m.Config.MediaType
		}
		pm.children = append([]ocispec.Descriptor{m.Config}, m.Layers...)
	}
	for _, c := range pm.children {
		if err := c.Digest.Validate(); err != nil {
			return pm, manifestInvalid("descriptor digest %q: %v", c.Digest, err)
		}
	}
	if pm.subject != nil {
		if err := pm.subject.Digest.Validate(); err != nil {
			return pm, manifestInvalid("subject digest %q: %v", pm.subject.Digest, err)
		}
	}
	return pm, nil
}

// foreign reports whether a layer lives elsewhere (Docker foreign or OCI
// non-distributable layers with URLs) and so need not be in the registry.
func foreign(d ocispec.Descriptor) bool {
	if len(d.URLs) == 0 {
		return false
	}
	mt := types.MediaType(d.MediaType)
	return mt == types.DockerForeignLayer || !mt.IsDistributable()
}

func (rg *Registry) putManifest(w http.ResponseWriter, r *http.Request, name, reference string) error {
	ctx := r.Context()
	var wantDigest digest.Digest
	tag := ""
	if strings.Contains(reference, ":") {
		d, err := parseDigest(reference)
		if err != nil {
			return err
		}
		wantDigest = d
	} else if tagRE.MatchString(reference) {
		tag = reference
	} else {
		return manifestInvalid("invalid tag %q", reference).withDetail(map[string]string{"tag": reference})
	}
	tooBig := apiErr(http.StatusRequestEntityTooLarge, codeManifestInvalid, "manifest exceeds %d bytes", MaxManifestSize)
	if r.ContentLength > MaxManifestSize {
		return tooBig
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, MaxManifestSize+1))
	if err != nil {
		return err
	}
	if len(b) > MaxManifestSize {
		return tooBig
	}
	pm, err := parseManifest(r.Header.Get("Content-Type"), b)
	if err != nil {
		return err
	}
	// A manifest pushed by digest is addressed with that digest's
	// algorithm (sha256 or sha512); by tag, with sha256.
	alg := digest.Canonical
	if wantDigest != "" {
		if alg = wantDigest.Algorithm(); !alg.Available() {
			return apiErr(http.StatusBadRequest, codeDigestInvalid, "digest algorithm %q is not supported", alg).withDetail(map[string]string{"digest": wantDigest.String()})
		}
	}
	d := alg.FromBytes(b)
	if wantDigest != "" && wantDigest != d {
		return apiErr(http.StatusBadRequest, codeDigestInvalid, "manifest digest is %s, not %s", d, wantDigest).withDetail(map[string]string{"digest": wantDigest.String()})
	}
	for _, c := range pm.children {
		if foreign(c) {
			continue
		}
		if !rg.hasRef(ctx, manifestRef(name, c.Digest)) && !rg.hasRef(ctx, blobRef(name, c.Digest)) {
			return apiErr(http.StatusBadRequest, codeManifestBlobUnknown, "manifest references %s, unknown to repository %s", c.Digest, name).withDetail(map[string]string{"digest": c.Digest.String()})
		}
	}
	if _, err := rg.store.WriteBlob(ctx, bytes.NewReader(b), int64(len(b)), d); err != nil {
		return err
	}
	desc := ocispec.Descriptor{MediaType: pm.mediaType, Digest: d, Size: int64(len(b))}
	if pm.subject != nil {
		desc.Annotations = map[string]string{subjectAnnotation: pm.subject.Digest.String()}
	}
	if err := rg.store.SetRef(ctx, manifestRef(name, d), desc); err != nil {
		return err
	}
	if tag != "" {
		if err := rg.store.SetRef(ctx, tagRef(name, tag), ocispec.Descriptor{MediaType: desc.MediaType, Digest: d, Size: desc.Size}); err != nil {
			return err
		}
	}
	h := w.Header()
	h.Set("Location", "/v2/"+name+"/manifests/"+d.String())
	h.Set("Docker-Content-Digest", d.String())
	if pm.subject != nil {
		h.Set("OCI-Subject", pm.subject.Digest.String())
	}
	h.Set("Content-Length", "0")
	w.WriteHeader(http.StatusCreated)
	return nil
}

// deleteManifest deletes a tag, or a manifest by digest together with the
// repository's tags that point at it.
func (rg *Registry) deleteManifest(w http.ResponseWriter, r *http.Request, name, reference string) error {
	ctx := r.Context()
	if !strings.Contains(reference, ":") {
		if err := rg.store.DeleteRef(ctx, tagRef(name, reference)); errors.Is(err, content.ErrNotFound) {
			return manifestUnknown(name, reference)
		} else if err != nil {
			return err
		}
		w.WriteHeader(http.StatusAccepted)
		return nil
	}
	d, err := parseDigest(reference)
	if err != nil {
		return err
	}
	if !rg.hasRef(ctx, manifestRef(name, d)) {
		return manifestUnknown(name, reference)
	}
	refs, err := rg.store.Refs(ctx)
	if err != nil {
		return err
	}
	tagPrefix := RefPrefix + name + ":"
	for ref, desc := range refs {
		if strings.HasPrefix(ref, tagPrefix) && desc.Digest == d {
			if err := rg.store.DeleteRef(ctx, ref); err != nil && !errors.Is(err, content.ErrNotFound) {
				return err
			}
		}
	}
	if err := rg.store.DeleteRef(ctx, manifestRef(name, d)); err != nil && !errors.Is(err, content.ErrNotFound) {
		return err
	}
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// referrers lists the manifests of name whose subject is the given digest,
// optionally filtered by ?artifactType=.
func (rg *Registry) referrers(w http.ResponseWriter, r *http.Request, name, arg string) error {
	ctx := r.Context()
	d, err := parseDigest(arg)
	if err != nil {
		return err
	}
	filter := r.URL.Query().Get("artifactType")
	refs, err := rg.store.Refs(ctx)
	if err != nil {
		return err
	}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{}}
	idx.SchemaVersion = 2
	prefix := RefPrefix + name + "@"
	for ref, desc := range refs {
		if !strings.HasPrefix(ref, prefix) || desc.Annotations[subjectAnnotation] != d.String() {
			continue
		}
		b, err := rg.store.ReadBlob(ctx, desc.Digest, MaxManifestSize)
		if errors.Is(err, content.ErrNotFound) {
			continue
		} else if err != nil {
			return err
		}
		pm, err := parseManifest(desc.MediaType, b)
		if err != nil {
			continue
		}
		if filter != "" && pm.artifactType != filter {
			continue
		}
		idx.Manifests = append(idx.Manifests, ocispec.Descriptor{
			MediaType: desc.MediaType, Digest: desc.Digest, Size: desc.Size,
			ArtifactType: pm.artifactType, Annotations: pm.annotations,
		})
	}
	if filter != "" {
		w.Header().Set("OCI-Filters-Applied", "artifactType")
	}
	return writeJSON(w, idx.MediaType, idx)
}

func writeJSON(w http.ResponseWriter, mediaType string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", mediaType)
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	return nil
}
