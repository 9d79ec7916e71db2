package apiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Finalizers the garbage collector acts on.
const (
	finalizerOrphan     = metav1.FinalizerOrphanDependents
	finalizerForeground = metav1.FinalizerDeleteDependents
)

// deleteOptions reads DeleteOptions from the body (if any) and the query.
func deleteOptions(r *http.Request) (*metav1.DeleteOptions, error) {
	opts := &metav1.DeleteOptions{}
	if r.ContentLength != 0 {
		body, proto, err := readBody(r)
		if err != nil && !isEmptyBody(err) {
			return nil, err
		}
		if len(body) > 0 {
			if proto {
				_, _, err = protoSerializer.Decode(body, nil, opts)
			} else {
				err = json.Unmarshal(body, opts)
			}
			if err != nil {
				return nil, apierrors.NewBadRequest(fmt.Sprintf("DeleteOptions in the body are invalid: %v", err))
			}
		}
	}
	q := r.URL.Query()
	if v := q.Get("gracePeriodSeconds"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("gracePeriodSeconds %q is not a number", v))
		}
		opts.GracePeriodSeconds = &n
	}
	if v := q.Get("propagationPolicy"); v != "" {
		p := metav1.DeletionPropagation(v)
		opts.PropagationPolicy = &p
	}
	if v := q.Get("orphanDependents"); v != "" {
		b := isTrue(v)
		opts.OrphanDependents = &b
	}
	if isDryRun(r) {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	if p := opts.PropagationPolicy; p != nil {
		switch *p {
		case metav1.DeletePropagationOrphan, metav1.DeletePropagationBackground, metav1.DeletePropagationForeground:
		default:
			return nil, apierrors.NewBadRequest(fmt.Sprintf("propagationPolicy %q is invalid: must be Orphan, Background or Foreground", *p))
		}
	}
	return opts, nil
}

// propagation resolves the policy of a delete: explicit, the legacy
// orphanDependents flag, or Background.
func propagation(opts *metav1.DeleteOptions) metav1.DeletionPropagation {
	if opts.PropagationPolicy != nil {
		return *opts.PropagationPolicy
	}
	if opts.OrphanDependents != nil && *opts.OrphanDependents {
		return metav1.DeletePropagationOrphan
	}
	return metav1.DeletePropagationBackground
}

func (s *Server) delete(ctx context.Context, w http.ResponseWriter, r *http.Request, k *kind, ri requestInfo, out output) error {
	opts, err := deleteOptions(r)
	if err != nil {
		return err
	}
	obj, deleted, err := s.deleteObject(ctx, k, ri.namespace, ri.name, opts)
	if err != nil {
		return err
	}
	if !deleted {
		return s.respond(w, http.StatusAccepted, k, out, obj, "")
	}
	if _, ok := obj.(*corev1.Pod); ok {
		return s.respond(w, http.StatusOK, k, out, obj, "")
	}
	m := accessor(obj)
	writeObject(w, http.StatusOK, output{yaml: out.yaml}, &metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
		Status:   metav1.StatusSuccess,
		Details:  &metav1.StatusDetails{Name: m.GetName(), Group: k.Group, Kind: k.Plural, UID: m.GetUID()},
	})
	return nil
}

// deleteObject deletes one object, or marks it for deletion when
// finalizers (including the garbage collector's) or a grace period must
// run first. It reports whether the object is gone.
func (s *Server) deleteObject(ctx context.Context, k *kind, ns, name string, opts *metav1.DeleteOptions) (runtime.Object, bool, error) {
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
		m := accessor(cur)
		if p := opts.Preconditions; p != nil {
			if p.UID != nil && *p.UID != m.GetUID() {
				return nil, false, apierrors.NewConflict(k.gr, name, fmt.Errorf("Precondition failed: UID in precondition: %v, UID in object meta: %v", *p.UID, m.GetUID()))
			}
			if p.ResourceVersion != nil && *p.ResourceVersion != m.GetResourceVersion() {
				return nil, false, apierrors.NewConflict(k.gr, name, fmt.Errorf("Precondition failed: ResourceVersion in precondition: %v, ResourceVersion in object meta: %v", *p.ResourceVersion, m.GetResourceVersion()))
			}
		}
		next := cur.DeepCopyObject()
		immediate := s.markDeleting(next, opts)
		if len(opts.DryRun) > 0 {
			return next, immediate, nil
		}
		if immediate {
			next = cur
		}
		out, deleted, retry, err := s.commit(ctx, k, key, name, cur, next, kv.Rev, immediate)
		if retry {
			continue
		}
		return out, deleted, err
	}
}

// markDeleting sets deletionTimestamp, the grace period and the garbage
// collector's finalizer on obj as the delete options ask. It returns true
// when nothing has to wait and the object can go now.
func (s *Server) markDeleting(obj runtime.Object, opts *metav1.DeleteOptions) bool {
	m := accessor(obj)
	now := s.now()
	finalizers := m.GetFinalizers()
	policy := propagation(opts)
	alreadyDeleting := m.GetDeletionTimestamp() != nil
	if !alreadyDeleting || opts.PropagationPolicy != nil || opts.OrphanDependents != nil {
		finalizers = without(finalizers, finalizerOrphan, finalizerForeground)
		switch policy {
		case metav1.DeletePropagationOrphan:
			finalizers = append(finalizers, finalizerOrphan)
		case metav1.DeletePropagationForeground:
			finalizers = append(finalizers, finalizerForeground)
		}
	}
	m.SetFinalizers(finalizers)

	grace := int64(0)
	if pod, ok := obj.(*corev1.Pod); ok && pod.Spec.NodeName != "" && pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed {
		grace = 30
		if pod.Spec.TerminationGracePeriodSeconds != nil {
			grace = *pod.Spec.TerminationGracePeriodSeconds
		}
		if opts.GracePeriodSeconds != nil {
			grace = *opts.GracePeriodSeconds
		}
		if cur := m.GetDeletionGracePeriodSeconds(); alreadyDeleting && cur != nil && *cur < grace {
			grace = *cur
		}
	}
	nsWaits := false
	if ns, ok := obj.(*corev1.Namespace); ok {
		nsWaits = len(ns.Spec.Finalizers) > 0
		ns.Status.Phase = corev1.NamespaceTerminating
	}
	if len(finalizers) == 0 && grace == 0 && !nsWaits {
		return true
	}
	if !alreadyDeleting || grace < ptrValue(m.GetDeletionGracePeriodSeconds()) {
		t := metav1.NewTime(now.Add(time.Duration(grace) * time.Second))
		m.SetDeletionTimestamp(&t)
		m.SetDeletionGracePeriodSeconds(&grace)
	}
	return false
}

func ptrValue(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}

func without(list []string, drop ...string) []string {
	out := list[:0:0]
	for _, s := range list {
		keep := true
		for _, d := range drop {
			if s == d {
				keep = false
			}
		}
		if keep {
			out = append(out, s)
		}
	}
	return out
}

func (s *Server) deleteCollection(ctx context.Context, w http.ResponseWriter, r *http.Request, k *kind, ri requestInfo, out output) error {
	opts, err := deleteOptions(r)
	if err != nil {
		return err
	}
	lo, err := parseListOptions(r)
	if err != nil {
		return err
	}
	lo.limit = 0
	items, _, err := s.listObjects(ctx, k, ri.namespace, lo)
	if err != nil {
		return err
	}
	for _, obj := range items.items {
		m := accessor(obj)
		if _, _, err := s.deleteObject(ctx, k, m.GetNamespace(), m.GetName(), opts); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	writeObject(w, http.StatusOK, output{yaml: out.yaml}, &metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusSuccess,
	})
	return nil
}
