package apiserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"skiff.dev/skiff/internal/store"
)

// serveResource dispatches a resource request to its verb.
func (s *Server) serveResource(w http.ResponseWriter, r *http.Request, ri requestInfo) {
	if s.serveBinding(w, r, ri) || s.serveEviction(w, r, ri) {
		return
	}
	k, err := s.kindFor(ri)
	if err == nil {
		err = checkScope(k, ri)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	out, err := negotiate(r)
	if err != nil {
		writeError(w, err)
		return
	}
	out.proto = out.proto && k.proto
	ctx := withWarnings(r.Context(), w)
	switch ri.subresource {
	case "":
	case "status":
		if !k.Status {
			err = notFoundSub(k, ri)
		}
	case "scale":
		if !k.Scale {
			err = notFoundSub(k, ri)
		} else {
			err = s.serveScale(ctx, w, r, k, ri)
			if err != nil {
				writeError(w, err)
			}
			return
		}
	case "finalize":
		if k.Kind != "Namespace" || ri.verb != "update" {
			err = notFoundSub(k, ri)
		}
	case "approval":
		if k.gk != csrGK {
			err = notFoundSub(k, ri)
		}
	default:
		err = notFoundSub(k, ri)
	}
	if err == nil && !allowed(k, ri) {
		err = apierrors.NewMethodNotSupported(k.gr, ri.verb)
	}
	if err != nil {
		writeError(w, err)
		return
	}
	switch ri.verb {
	case "get":
		err = s.get(ctx, w, k, ri, out)
	case "list":
		err = s.list(ctx, w, r, k, ri, out)
	case "watch":
		err = s.watch(ctx, w, r, k, ri, out)
	case "create":
		err = s.create(ctx, w, r, k, ri, out)
	case "update":
		err = s.update(ctx, w, r, k, ri, out)
	case "patch":
		err = s.patch(ctx, w, r, k, ri, out)
	case "delete":
		err = s.delete(ctx, w, r, k, ri, out)
	case "deletecollection":
		err = s.deleteCollection(ctx, w, r, k, ri, out)
	default:
		err = apierrors.NewMethodNotSupported(k.gr, ri.verb)
	}
	if err != nil {
		writeError(w, err)
	}
}

func notFoundSub(k *kind, ri requestInfo) error {
	return apierrors.NewNotFound(k.gr, ri.name+"/"+ri.subresource)
}

func checkScope(k *kind, ri requestInfo) error {
	if !k.Namespaced && ri.namespace != "" {
		return apierrors.NewNotFound(k.gr, ri.name)
	}
	if k.Namespaced && ri.namespace == "" && ri.verb != "list" && ri.verb != "watch" {
		return apierrors.NewBadRequest(fmt.Sprintf("%s is namespaced: the request needs a namespace", k.qualified()))
	}
	return nil
}

func allowed(k *kind, ri requestInfo) bool {
	if ri.subresource != "" {
		return ri.verb == "get" || ri.verb == "update" || ri.verb == "patch"
	}
	for _, v := range k.AllVerbs() {
		if v == ri.verb {
			return true
		}
	}
	return false
}

func (s *Server) get(ctx context.Context, w http.ResponseWriter, k *kind, ri requestInfo, out output) error {
	kv, err := s.cfg.Store.Get(ctx, k.key(ri.namespace, ri.name))
	if err != nil {
		return storeError(k, ri.name, err)
	}
	obj, err := k.decodeKV(kv)
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	return s.respond(w, http.StatusOK, k, out, obj, "")
}

// respond writes one stored-form object in the negotiated form.
func (s *Server) respond(w http.ResponseWriter, code int, k *kind, out output, obj runtime.Object, includeObject string) error {
	served, err := k.servedForm(obj)
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	switch out.as {
	case "Table":
		t, err := s.table(k, []runtime.Object{served}, includeObject, out, true)
		if err != nil {
			return err
		}
		writeObject(w, code, out, t)
	case "PartialObjectMetadata":
		writeObject(w, code, out, partialMetadataV(served, out))
	case "PartialObjectMetadataList":
		return notAcceptable("PartialObjectMetadataList is only served for lists")
	default:
		writeObject(w, code, out, served)
	}
	return nil
}

func notAcceptable(msg string) error {
	return apierrors.NewGenericServerResponse(http.StatusNotAcceptable, "", schemaGR(), "", msg, 0, false)
}

// partialMetadataV is the metadata-only view with the meta.k8s.io version
// the client asked for.
func partialMetadataV(obj runtime.Object, out output) *metav1.PartialObjectMetadata {
	pm := partialMetadata(obj)
	pm.APIVersion, pm.Kind = "meta.k8s.io/v1", "PartialObjectMetadata"
	return pm
}

// decodeBody decodes a create or update body into the served form and
// checks its apiVersion and kind against the endpoint.
func decodeBody(r *http.Request, k *kind) (runtime.Object, []string, error) {
	data, proto, err := readBody(r)
	if err != nil {
		return nil, nil, err
	}
	mode, err := parseFieldValidation(r)
	if err != nil {
		return nil, nil, err
	}
	obj := k.newServed()
	var warnings []string
	if proto {
		if _, _, err := protoSerializer.Decode(data, nil, obj); err != nil {
			return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("%s in version %q cannot be handled as a %s: %v", k.Kind, k.Version, k.Kind, err))
		}
	} else if warnings, err = decodeInto(data, obj, k, mode); err != nil {
		return nil, nil, err
	}
	if err := checkTypeMeta(obj, k); err != nil {
		return nil, nil, err
	}
	return obj, warnings, nil
}

func checkTypeMeta(obj runtime.Object, k *kind) error {
	gvk := obj.GetObjectKind().GroupVersionKind()
	if gvk.Kind != "" && gvk.Kind != k.Kind {
		return apierrors.NewBadRequest(fmt.Sprintf("%s in version %q cannot be handled as a %s: the kind in the data (%s) does not match the endpoint's kind (%s)", gvk.Kind, gvk.Version, k.Kind, gvk.Kind, k.Kind))
	}
	if v := gvk.GroupVersion().String(); gvk.Version != "" && v != k.served.GroupVersion().String() {
		return apierrors.NewBadRequest(fmt.Sprintf("the API version in the data (%s) does not match the expected API version (%s)", v, k.served.GroupVersion().String()))
	}
	obj.GetObjectKind().SetGroupVersionKind(k.served)
	return nil
}

func isDryRun(r *http.Request) bool {
	for _, v := range r.URL.Query()["dryRun"] {
		if v == "All" {
			return true
		}
	}
	return false
}

func (s *Server) create(ctx context.Context, w http.ResponseWriter, r *http.Request, k *kind, ri requestInfo, out output) error {
	if ri.name != "" || ri.subresource != "" {
		return apierrors.NewMethodNotSupported(k.gr, "create")
	}
	obj, warnings, err := decodeBody(r, k)
	if err != nil {
		return err
	}
	addWarnings(w, warnings)
	m := accessor(obj)
	if k.Namespaced {
		switch ns := m.GetNamespace(); {
		case ns == "":
			m.SetNamespace(ri.namespace)
		case ns != ri.namespace:
			return apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
		}
	} else {
		m.SetNamespace("")
	}
	if m.GetName() == "" && m.GetGenerateName() == "" {
		return apierrors.NewInvalid(k.gk, "", field.ErrorList{field.Required(field.NewPath("metadata", "name"), "name or generateName is required")})
	}
	if m.GetResourceVersion() != "" {
		return apierrors.NewBadRequest("resourceVersion should not be set on objects to be created")
	}
	stored, err := k.storedForm(obj)
	if err != nil {
		return apierrors.NewBadRequest(err.Error())
	}
	if k.Namespaced {
		if err := s.namespaceAccepts(ctx, ri.namespace); err != nil {
			return err
		}
	}
	generated := m.GetName() == ""
	for attempt := 0; ; attempt++ {
		k.prepareCreate(stored, s.now())
		if csr, ok := stored.(*certificatesv1.CertificateSigningRequest); ok {
			prepareCSRCreate(ctx, csr)
		}
		if err := s.admit(ctx, k, "", stored, nil, isDryRun(r)); err != nil {
			return err
		}
		if pod, ok := stored.(*corev1.Pod); ok {
			// Admission may have set resources (LimitRange defaults).
			pod.Status.QOSClass = podQOS(&pod.Spec)
		}
		txn, err := s.allocateOnCreate(ctx, stored, isDryRun(r))
		if err != nil {
			return err
		}
		if isDryRun(r) {
			return s.respond(w, http.StatusCreated, k, out, stored, "")
		}
		data, err := k.encode(stored)
		if err != nil {
			txn.revert(ctx, s.log)
			return apierrors.NewInternalError(err)
		}
		name := accessor(stored).GetName()
		rev, err := s.cfg.Store.Create(ctx, k.key(accessor(stored).GetNamespace(), name), data)
		if err != nil {
			txn.revert(ctx, s.log)
		}
		if errors.Is(err, store.ErrAlreadyExists) && generated && attempt < 8 {
			accessor(stored).SetName("")
			continue
		}
		if err != nil {
			return storeError(k, name, err)
		}
		txn.commit(ctx, s.log)
		accessor(stored).SetResourceVersion(strconv.FormatInt(rev, 10))
		return s.respond(w, http.StatusCreated, k, out, stored, "")
	}
}

// namespaceAccepts refuses new objects in a missing or terminating namespace.
func (s *Server) namespaceAccepts(ctx context.Context, ns string) error {
	nk := s.storageKind(corev1.SchemeGroupVersion.WithKind("Namespace").GroupKind())
	if nk == nil {
		return nil
	}
	kv, err := s.cfg.Store.Get(ctx, nk.key("", ns))
	if err != nil {
		return storeError(nk, ns, err)
	}
	obj, err := nk.decodeKV(kv)
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	nsObj := obj.(*corev1.Namespace)
	if nsObj.DeletionTimestamp != nil || nsObj.Status.Phase == corev1.NamespaceTerminating {
		return apierrors.NewForbidden(nk.gr, ns, fmt.Errorf("unable to create new content in namespace %s because it is being terminated", ns))
	}
	return nil
}

// updateFunc computes the new stored-form object from the current one.
type updateFunc func(cur runtime.Object) (runtime.Object, error)

// guaranteedUpdate reads the object, applies fn and writes the result,
// retrying when the object changed underneath unless the caller pinned a
// resourceVersion. An object whose deletion was only waiting for its
// finalizers is deleted once they are gone. It returns the stored object
// and whether it was deleted.
func (s *Server) guaranteedUpdate(ctx context.Context, k *kind, ns, name, subresource string, dryRun bool, fn updateFunc) (runtime.Object, bool, error) {
	key := k.key(ns, name)
	for {
		kv, err := s.cfg.Store.Get(ctx, key)
		if err != nil {
			return nil, false, storeError(k, name, err)
		}
		cur, err := k.decodeKV(kv)
		if err != nil {
			return nil, false, apierrors.NewInternalError(err)
		}
		next, err := fn(cur.DeepCopyObject())
		if err != nil {
			return nil, false, err
		}
		if rv := accessor(next).GetResourceVersion(); rv != "" && rv != accessor(cur).GetResourceVersion() {
			return nil, false, apierrors.NewConflict(k.gr, name, errors.New(conflictMsg))
		}
		next = k.prepareUpdate(next, cur, subresource)
		if err := s.admit(ctx, k, subresource, next, cur, dryRun); err != nil {
			return nil, false, err
		}
		m := accessor(next)
		// As upstream: an update removes an object being deleted once its
		// finalizers are gone and no grace period is running (a pod under
		// graceful deletion stays until its node deletes it with grace 0).
		grace := m.GetDeletionGracePeriodSeconds()
		gone := m.GetDeletionTimestamp() != nil && len(m.GetFinalizers()) == 0 && (grace == nil || *grace == 0) &&
			finalizedNamespace(next)
		var txn *allocTxn
		if !gone {
			if txn, err = s.allocateOnUpdate(ctx, next, cur, subresource, dryRun); err != nil {
				return nil, false, err
			}
		}
		if dryRun {
			return next, false, nil
		}
		out, deleted, retry, err := s.commit(ctx, k, key, name, cur, next, kv.Rev, gone)
		if retry || err != nil {
			txn.revert(ctx, s.log)
		} else {
			txn.commit(ctx, s.log)
		}
		if retry {
			continue
		}
		return out, deleted, err
	}
}

// commit replaces cur, read at revision rev, with next — or deletes the
// object when del — unless nothing changed. retry reports that the object
// changed meanwhile and the caller should read it again.
func (s *Server) commit(ctx context.Context, k *kind, key, name string, cur, next runtime.Object, rev int64, del bool) (out runtime.Object, deleted, retry bool, err error) {
	if del {
		if _, err := s.cfg.Store.Delete(ctx, key, rev); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return nil, false, true, nil
			}
			return nil, false, false, storeError(k, name, err)
		}
		s.releaseOnDelete(ctx, cur)
		return next, true, false, nil
	}
	data, err := k.encode(next)
	if err != nil {
		return nil, false, false, apierrors.NewInternalError(err)
	}
	if old, _ := k.encode(cur); bytes.Equal(old, data) {
		return cur, false, false, nil // no change: no write, same resourceVersion
	}
	newRev, err := s.cfg.Store.Update(ctx, key, data, rev)
	if errors.Is(err, store.ErrConflict) {
		return nil, false, true, nil
	}
	if err != nil {
		return nil, false, false, storeError(k, name, err)
	}
	accessor(next).SetResourceVersion(strconv.FormatInt(newRev, 10))
	return next, false, false, nil
}

// finalizedNamespace is false for a namespace whose spec finalizers still
// wait for its content to be deleted; true for every other object.
func finalizedNamespace(obj runtime.Object) bool {
	ns, ok := obj.(*corev1.Namespace)
	return !ok || len(ns.Spec.Finalizers) == 0
}

func (s *Server) update(ctx context.Context, w http.ResponseWriter, r *http.Request, k *kind, ri requestInfo, out output) error {
	obj, warnings, err := decodeBody(r, k)
	if err != nil {
		return err
	}
	addWarnings(w, warnings)
	m := accessor(obj)
	if m.GetName() != ri.name {
		return apierrors.NewBadRequest(fmt.Sprintf("the name of the object (%s) does not match the name on the URL (%s)", m.GetName(), ri.name))
	}
	if k.Namespaced && m.GetNamespace() != "" && m.GetNamespace() != ri.namespace {
		return apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
	}
	stored, err := k.storedForm(obj)
	if err != nil {
		return apierrors.NewBadRequest(err.Error())
	}
	res, _, err := s.guaranteedUpdate(ctx, k, ri.namespace, ri.name, ri.subresource, isDryRun(r), func(cur runtime.Object) (runtime.Object, error) {
		next := stored.DeepCopyObject()
		if ri.subresource == "finalize" {
			// Only spec.finalizers change through /finalize.
			out := cur.(*corev1.Namespace)
			out.Spec.Finalizers = next.(*corev1.Namespace).Spec.Finalizers
			out.ResourceVersion = accessor(next).GetResourceVersion()
			return out, nil
		}
		return next, nil
	})
	if err != nil {
		return err
	}
	return s.respond(w, http.StatusOK, k, out, res, "")
}
