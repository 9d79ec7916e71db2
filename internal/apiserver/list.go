package apiserver

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"skiff.dev/skiff/internal/store"
)

// listOptions are the parsed query parameters of list and watch.
type listOptions struct {
	labels        labels.Selector
	fields        fields.Selector
	limit         int64
	cont          string
	rv            string
	rvMatch       string
	includeObject string
	watch         watchOptions
}

func parseListOptions(r *http.Request) (listOptions, error) {
	q := r.URL.Query()
	lo := listOptions{labels: labels.Everything(), fields: fields.Everything()}
	var err error
	if s := q.Get("labelSelector"); s != "" {
		if lo.labels, err = labels.Parse(s); err != nil {
			return lo, apierrors.NewBadRequest(fmt.Sprintf("unable to parse requirement: %v", err))
		}
	}
	if s := q.Get("fieldSelector"); s != "" {
		if lo.fields, err = fields.ParseSelector(s); err != nil {
			return lo, apierrors.NewBadRequest(fmt.Sprintf("invalid field selector %q: %v", s, err))
		}
	}
	if s := q.Get("limit"); s != "" {
		if lo.limit, err = strconv.ParseInt(s, 10, 64); err != nil || lo.limit < 0 {
			return lo, apierrors.NewBadRequest(fmt.Sprintf("limit %q must be a non-negative integer", s))
		}
	}
	lo.cont = q.Get("continue")
	lo.rv = q.Get("resourceVersion")
	if _, err := parseRV(lo.rv); err != nil {
		return lo, apierrors.NewBadRequest(err.Error())
	}
	lo.rvMatch = q.Get("resourceVersionMatch")
	switch lo.rvMatch {
	case "", "NotOlderThan", "Exact":
	default:
		return lo, apierrors.NewBadRequest(fmt.Sprintf("resourceVersionMatch %q is invalid: must be NotOlderThan or Exact", lo.rvMatch))
	}
	if lo.rvMatch != "" && lo.rv == "" && q.Get("sendInitialEvents") == "" {
		return lo, apierrors.NewBadRequest("resourceVersionMatch is forbidden unless resourceVersion is provided")
	}
	if lo.cont != "" && lo.rv != "" && lo.rv != "0" {
		return lo, apierrors.NewBadRequest("specifying resource version is not allowed when using continue")
	}
	lo.includeObject = q.Get("includeObject")
	switch lo.includeObject {
	case "", "None", "Metadata", "Object":
	default:
		return lo, apierrors.NewBadRequest(fmt.Sprintf("includeObject %q is invalid: must be None, Metadata or Object", lo.includeObject))
	}
	lo.watch, err = parseWatchOptions(q)
	return lo, err
}

// continueToken is the opaque list continuation, encoded like upstream's.
type continueToken struct {
	APIVersion string `json:"v"`
	RV         int64  `json:"rv"`
	Start      string `json:"start"`
}

func encodeContinue(rev int64, nextKey, prefix string) string {
	b, _ := json.Marshal(continueToken{APIVersion: "meta.k8s.io/v1", RV: rev, Start: strings.TrimPrefix(nextKey, prefix)})
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeContinue(tok, prefix string) (rev int64, startKey string, err error) {
	data, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return 0, "", apierrors.NewBadRequest("continue key is not valid: illegal base64 data")
	}
	var c continueToken
	if err := json.Unmarshal(data, &c); err != nil || c.APIVersion != "meta.k8s.io/v1" || c.RV <= 0 || strings.Contains(c.Start, "..") {
		return 0, "", apierrors.NewBadRequest("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
	}
	return c.RV, prefix + c.Start, nil
}

// listed is one page of matching objects in stored form: decoded, or,
// for a raw listing, as stored.
type listed struct {
	items     []runtime.Object
	raw       []store.KV
	rev       int64
	cont      string
	remaining *int64
}

// listObjects reads the objects under ns matching lo, one page at a time
// when lo.limit is set.
func (s *Server) listObjects(ctx context.Context, k *kind, ns string, lo listOptions) (listed, int64, error) {
	return s.listPage(ctx, k, ns, lo, false)
}

// listPage is listObjects; raw keeps the stored values undecoded (only
// without selectors, which need decoded objects).
func (s *Server) listPage(ctx context.Context, k *kind, ns string, lo listOptions, raw bool) (listed, int64, error) {
	prefix := k.listPrefix(ns)
	opts := store.ListOptions{}
	if lo.cont != "" {
		rev, start, err := decodeContinue(lo.cont, prefix)
		if err != nil {
			return listed{}, 0, err
		}
		opts.Rev, opts.StartKey = rev, start
	} else if lo.rvMatch == "Exact" {
		opts.Rev, _ = parseRV(lo.rv)
	}
	match, err := s.matcher(k, lo)
	if err != nil {
		return listed{}, 0, err
	}
	filtering := !lo.labels.Empty() || !lo.fields.Empty()
	var out listed
	for {
		if lo.limit > 0 {
			opts.Limit = lo.limit - int64(len(out.items)+len(out.raw)) + 1 // one extra to know whether more remain
			if filtering && opts.Limit < 64 {
				opts.Limit = 64
			}
		}
		page, err := s.cfg.Store.List(ctx, prefix, opts)
		if err != nil {
			if lo.cont != "" && errorsIsCompacted(err) {
				return listed{}, 0, apierrors.NewResourceExpired("The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.")
			}
			return listed{}, 0, storeError(k, "", err)
		}
		out.rev = page.Rev
		opts.Rev = page.Rev
		for i, kv := range page.Items {
			if lo.limit > 0 && int64(len(out.items)+len(out.raw)) == lo.limit {
				out.cont = encodeContinue(page.Rev, kv.Key, prefix)
				if !filtering {
					n := int64(len(page.Items)-i) + page.Remaining
					out.remaining = &n
				}
				return out, page.Rev, nil
			}
			if raw && !filtering {
				out.raw = append(out.raw, kv)
				continue
			}
			obj, err := k.decodeKV(kv)
			if err != nil {
				return listed{}, 0, apierrors.NewInternalError(err)
			}
			if match(obj) {
				out.items = append(out.items, obj)
			}
		}
		if !page.More || len(page.Items) == 0 {
			return out, page.Rev, nil
		}
		opts.StartKey = page.Items[len(page.Items)-1].Key + "\x00"
	}
}

func errorsIsCompacted(err error) bool { return errors.Is(err, store.ErrCompacted) }

// matcher returns the label and field selector test for a kind.
func (s *Server) matcher(k *kind, lo listOptions) (func(runtime.Object) bool, error) {
	getFields := fieldsFor(k.gk)
	for _, req := range lo.fields.Requirements() {
		if !supportedField(k.gk, req.Field) {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("field label not supported: %s", req.Field))
		}
	}
	if lo.labels.Empty() && lo.fields.Empty() {
		return func(runtime.Object) bool { return true }, nil
	}
	return func(obj runtime.Object) bool {
		m := accessor(obj)
		if !lo.labels.Matches(labels.Set(m.GetLabels())) {
			return false
		}
		return lo.fields.Empty() || lo.fields.Matches(getFields(obj))
	}, nil
}

func (s *Server) list(ctx context.Context, w http.ResponseWriter, r *http.Request, k *kind, ri requestInfo, out output) error {
	lo, err := parseListOptions(r)
	if err != nil {
		return err
	}
	raw := out.proto && out.as == "" && k.toServed == nil
	res, rev, err := s.listPage(ctx, k, ri.namespace, lo, raw)
	if err != nil {
		return err
	}
	if res.raw != nil || (raw && len(res.items) == 0 && lo.labels.Empty() && lo.fields.Empty()) {
		data, err := rawProtoList(k, res.raw, rev, res.cont, res.remaining)
		if err == nil {
			w.Header().Set("Content-Type", protoType)
			w.WriteHeader(http.StatusOK)
			w.Write(data)
			return nil
		}
		if !errors.Is(err, errNotProto) {
			return apierrors.NewInternalError(err)
		}
		// Some value was stored as JSON: decode this page after all.
		if res, rev, err = s.listPage(ctx, k, ri.namespace, lo, false); err != nil {
			return err
		}
	}
	served := make([]runtime.Object, len(res.items))
	for i, obj := range res.items {
		if served[i], err = k.servedForm(obj); err != nil {
			return apierrors.NewInternalError(err)
		}
	}
	rv := strconv.FormatInt(rev, 10)
	switch out.as {
	case "Table":
		t, err := s.table(k, served, lo.includeObject, out, true)
		if err != nil {
			return err
		}
		t.ResourceVersion, t.Continue, t.RemainingItemCount = rv, res.cont, res.remaining
		writeObject(w, http.StatusOK, out, t)
		return nil
	case "PartialObjectMetadataList", "PartialObjectMetadata":
		l := partialList(served, out)
		l.ResourceVersion, l.Continue, l.RemainingItemCount = rv, res.cont, res.remaining
		writeObject(w, http.StatusOK, out, l)
		return nil
	}
	list := k.newServedList()
	if err := meta.SetList(list, served); err != nil {
		return apierrors.NewInternalError(err)
	}
	lm, _ := meta.ListAccessor(list)
	lm.SetResourceVersion(rv)
	lm.SetContinue(res.cont)
	lm.SetRemainingItemCount(res.remaining)
	list.GetObjectKind().SetGroupVersionKind(k.listGVK)
	writeObject(w, http.StatusOK, out, list)
	return nil
}
