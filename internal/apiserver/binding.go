package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// serveBinding answers the binding of a pod to a node, as kube-apiserver
// does for schedulers: POST /api/v1/namespaces/{ns}/pods/{name}/binding
// and the older POST /api/v1/namespaces/{ns}/bindings, both with a
// v1.Binding body. It sets spec.nodeName (and the PodScheduled condition)
// when the pod has none yet and answers 409 Conflict otherwise. It reports
// whether the request was a binding request.
func (s *Server) serveBinding(w http.ResponseWriter, r *http.Request, ri requestInfo) bool {
	if ri.group != "" || ri.version != "v1" {
		return false
	}
	sub := ri.resource == "pods" && ri.subresource == "binding"
	legacy := ri.resource == "bindings" && ri.subresource == ""
	if !sub && !legacy {
		return false
	}
	if err := s.bind(r.Context(), w, r, ri, legacy); err != nil {
		writeError(w, err)
	}
	return true
}

var bindingsGR = schema.GroupResource{Resource: "pods/binding"}

func (s *Server) bind(ctx context.Context, w http.ResponseWriter, r *http.Request, ri requestInfo, legacy bool) error {
	if ri.verb != "create" || legacy && ri.name != "" {
		return apierrors.NewMethodNotSupported(schema.GroupResource{Resource: ri.resource}, ri.verb)
	}
	if ri.namespace == "" {
		return apierrors.NewBadRequest("bindings are namespaced: the request needs a namespace")
	}
	out, err := negotiate(r)
	if err != nil {
		return err
	}
	b, err := decodeBinding(r)
	if err != nil {
		return err
	}
	name := ri.name
	if legacy {
		name = b.Name
	} else if b.Name != name {
		return apierrors.NewBadRequest("name in URL does not match name in Binding object")
	}
	if b.Namespace != "" && b.Namespace != ri.namespace {
		return apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request")
	}
	if errs := validateBinding(b); len(errs) > 0 {
		return apierrors.NewInvalid(schema.GroupKind{Kind: "Binding"}, name, errs)
	}
	k := s.storageKind(schema.GroupKind{Kind: "Pod"})
	if k == nil {
		return apierrors.NewNotFound(schema.GroupResource{Resource: "pods"}, name)
	}
	if err := s.assignPod(ctx, k, ri.namespace, name, b, isDryRun(r)); err != nil {
		return err
	}
	writeObject(w, http.StatusCreated, output{yaml: out.yaml, proto: out.proto}, &metav1.Status{
		TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusSuccess, Code: http.StatusCreated,
	})
	return nil
}

// decodeBinding reads a v1.Binding body (JSON, YAML or protobuf).
func decodeBinding(r *http.Request) (*corev1.Binding, error) {
	data, proto, err := readBody(r)
	if err != nil {
		return nil, err
	}
	b := &corev1.Binding{}
	if proto {
		_, _, err = protoSerializer.Decode(data, nil, b)
	} else {
		err = json.Unmarshal(data, b)
	}
	if err != nil {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("Binding in version \"v1\" cannot be handled as a Binding: %v", err))
	}
	if k := b.Kind; k != "" && k != "Binding" {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("%s in version %q cannot be handled as a Binding: the kind in the data (%s) does not match the endpoint's kind (Binding)", k, b.APIVersion, k))
	}
	if v := b.APIVersion; v != "" && v != "v1" {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("the API version in the data (%s) does not match the expected API version (v1)", v))
	}
	return b, nil
}

// validateBinding checks the target as upstream does.
func validateBinding(b *corev1.Binding) field.ErrorList {
	var errs field.ErrorList
	if b.Target.Kind != "" && b.Target.Kind != "Node" {
		errs = append(errs, field.NotSupported(field.NewPath("target", "kind"), b.Target.Kind, []string{"Node", "<empty>"}))
	}
	if b.Target.Name == "" {
		errs = append(errs, field.Required(field.NewPath("target", "name"), ""))
	}
	return errs
}

// assignPod sets the pod's node. It writes the store directly, as
// upstream's binding storage does: a pod update would refuse a new
// spec.nodeName.
func (s *Server) assignPod(ctx context.Context, k *kind, ns, name string, b *corev1.Binding, dryRun bool) error {
	key := k.key(ns, name)
	for {
		kv, err := s.cfg.Store.Get(ctx, key)
		if err != nil {
			return storeError(k, name, err)
		}
		cur, err := k.decodeKV(kv)
		if err != nil {
			return apierrors.NewInternalError(err)
		}
		pod := cur.(*corev1.Pod)
		if err := bindable(pod, b); err != nil {
			return err
		}
		next := pod.DeepCopy()
		next.Spec.NodeName = b.Target.Name
		for k, v := range b.Annotations {
			if next.Annotations == nil {
				next.Annotations = map[string]string{}
			}
			next.Annotations[k] = v
		}
		setPodScheduled(&next.Status, metav1.NewTime(s.now()))
		if dryRun {
			return nil
		}
		_, _, retry, err := s.commit(ctx, k, key, name, cur, next, kv.Rev, false)
		if retry {
			continue
		}
		return err
	}
}

// bindable returns upstream's 409 for a pod that cannot be bound.
func bindable(pod *corev1.Pod, b *corev1.Binding) error {
	conflict := func(format string, args ...any) error {
		return apierrors.NewConflict(bindingsGR, pod.Name, fmt.Errorf(format, args...))
	}
	switch {
	case b.UID != "" && b.UID != pod.UID:
		return conflict("Precondition failed: UID in precondition: %v, UID in object meta: %v", b.UID, pod.UID)
	case b.ResourceVersion != "" && b.ResourceVersion != pod.ResourceVersion:
		return conflict("%s", errors.New(conflictMsg))
	case pod.DeletionTimestamp != nil:
		return conflict("pod %s is being deleted, cannot be assigned to a host", pod.Name)
	case pod.Spec.NodeName != "":
		return conflict("pod %v is already assigned to node %q", pod.Name, pod.Spec.NodeName)
	case len(pod.Spec.SchedulingGates) > 0:
		return conflict("pod %v has non-empty .spec.schedulingGates", pod.Name)
	}
	return nil
}

// setPodScheduled sets the PodScheduled condition to True.
func setPodScheduled(st *corev1.PodStatus, now metav1.Time) {
	want := corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now}
	for i := range st.Conditions {
		if st.Conditions[i].Type == corev1.PodScheduled {
			if st.Conditions[i].Status == corev1.ConditionTrue {
				return
			}
			want.LastProbeTime = st.Conditions[i].LastProbeTime
			st.Conditions[i] = want
			return
		}
	}
	st.Conditions = append(st.Conditions, want)
}
