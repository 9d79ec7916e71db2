package apiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
)

// patcher applies one kind of patch document to a JSON object.
type patcher func(doc, patch []byte, dataStruct runtime.Object) ([]byte, error)

var patchers = map[string]patcher{
	"application/json-patch+json": func(doc, patch []byte, _ runtime.Object) ([]byte, error) {
		p, err := jsonpatch.DecodePatch(patch)
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("the JSON patch is invalid: %v", err))
		}
		return p.Apply(doc)
	},
	"application/merge-patch+json": func(doc, patch []byte, _ runtime.Object) ([]byte, error) {
		if !json.Valid(patch) {
			return nil, apierrors.NewBadRequest("the merge patch is not valid JSON")
		}
		return jsonpatch.MergePatch(doc, patch)
	},
	"application/strategic-merge-patch+json": func(doc, patch []byte, data runtime.Object) ([]byte, error) {
		if !json.Valid(patch) {
			return nil, apierrors.NewBadRequest("the strategic merge patch is not valid JSON")
		}
		return strategicpatch.StrategicMergePatch(doc, patch, data)
	},
}

func patcherFor(r *http.Request) (patcher, error) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "application/apply-patch+yaml" || mt == "application/apply-patch+cbor" {
		return nil, apierrors.NewGenericServerResponse(http.StatusUnsupportedMediaType, "patch", schemaGR(), "",
			"server-side apply is not supported by Skiff yet: use client-side `kubectl apply` (without --server-side)", 0, false)
	}
	p, ok := patchers[mt]
	if !ok {
		return nil, apierrors.NewGenericServerResponse(http.StatusUnsupportedMediaType, "patch", schemaGR(), "",
			fmt.Sprintf("the patch content type %q is not supported: use application/json-patch+json, application/merge-patch+json or application/strategic-merge-patch+json", mt), 0, false)
	}
	return p, nil
}

func (s *Server) patch(ctx context.Context, w http.ResponseWriter, r *http.Request, k *kind, ri requestInfo, out output) error {
	apply, err := patcherFor(r)
	if err != nil {
		return err
	}
	patchDoc, err := readJSONBody(r, false)
	if err != nil {
		return err
	}
	mode, err := parseFieldValidation(r)
	if err != nil {
		return err
	}
	var warnings []string
	res, _, err := s.guaranteedUpdate(ctx, k, ri.namespace, ri.name, ri.subresource, isDryRun(r), func(cur runtime.Object) (runtime.Object, error) {
		rv := accessor(cur).GetResourceVersion()
		served, err := k.servedForm(cur)
		if err != nil {
			return nil, apierrors.NewInternalError(err)
		}
		doc, err := json.Marshal(served)
		if err != nil {
			return nil, apierrors.NewInternalError(err)
		}
		patched, err := apply(doc, patchDoc, k.newServed())
		if err != nil {
			if _, ok := err.(apierrors.APIStatus); ok {
				return nil, err
			}
			return nil, apierrors.NewGenericServerResponse(http.StatusUnprocessableEntity, "patch", k.gr, ri.name, err.Error(), 0, false)
		}
		obj := k.newServed()
		if warnings, err = decodeInto(patched, obj, k, mode); err != nil {
			return nil, err
		}
		if err := checkTypeMeta(obj, k); err != nil {
			return nil, err
		}
		m := accessor(obj)
		if m.GetName() != ri.name {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", m.GetName(), ri.name))
		}
		// A resourceVersion in the patch is a precondition; none means
		// "whatever is current".
		if m.GetResourceVersion() == "" {
			m.SetResourceVersion(rv)
		}
		return k.storedForm(obj)
	})
	if err != nil {
		return err
	}
	addWarnings(w, warnings)
	return s.respond(w, http.StatusOK, k, out, res, "")
}
