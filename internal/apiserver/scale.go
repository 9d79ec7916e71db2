package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// serveScale answers the scale subresource (autoscaling/v1 Scale) of a
// workload: spec.replicas, status.replicas and the selector as a string.
func (s *Server) serveScale(ctx context.Context, w http.ResponseWriter, r *http.Request, k *kind, ri requestInfo) error {
	out, err := negotiate(r)
	if err != nil {
		return err
	}
	switch ri.verb {
	case "get":
		kv, err := s.cfg.Store.Get(ctx, k.key(ri.namespace, ri.name))
		if err != nil {
			return storeError(k, ri.name, err)
		}
		obj, err := k.decodeKV(kv)
		if err != nil {
			return apierrors.NewInternalError(err)
		}
		writeObject(w, http.StatusOK, output{yaml: out.yaml}, scaleOf(obj))
		return nil
	case "update", "patch":
	default:
		return apierrors.NewMethodNotSupported(k.gr, ri.verb)
	}
	var apply patcher
	if ri.verb == "patch" {
		if apply, err = patcherFor(r); err != nil {
			return err
		}
	}
	body, proto, err := readBody(r)
	if err != nil {
		return err
	}
	if proto && apply != nil {
		return apierrors.NewBadRequest("a patch must be JSON")
	}
	res, _, err := s.guaranteedUpdate(ctx, k, ri.namespace, ri.name, "", isDryRun(r), func(cur runtime.Object) (runtime.Object, error) {
		scale := scaleOf(cur)
		want := &autoscalingv1.Scale{}
		if apply != nil {
			doc, _ := json.Marshal(scale)
			patched, err := apply(doc, body, &autoscalingv1.Scale{})
			if err != nil {
				return nil, apierrors.NewBadRequest(err.Error())
			}
			if err := json.Unmarshal(patched, want); err != nil {
				return nil, apierrors.NewBadRequest(err.Error())
			}
		} else if proto {
			if _, _, err := protoSerializer.Decode(body, nil, want); err != nil {
				return nil, apierrors.NewBadRequest(fmt.Sprintf("Scale cannot be decoded: %v", err))
			}
		} else if err := json.Unmarshal(body, want); err != nil {
			return nil, apierrors.NewBadRequest(fmt.Sprintf("Scale cannot be decoded: %v", err))
		}
		if want.Spec.Replicas < 0 {
			return nil, apierrors.NewInvalid(autoscalingv1.SchemeGroupVersion.WithKind("Scale").GroupKind(), ri.name,
				field.ErrorList{field.Invalid(field.NewPath("spec", "replicas"), want.Spec.Replicas, "must be greater than or equal to 0")})
		}
		if rv := want.ResourceVersion; rv != "" && rv != accessor(cur).GetResourceVersion() {
			return nil, apierrors.NewConflict(k.gr, ri.name, errors.New(conflictMsg))
		}
		replicas := want.Spec.Replicas
		if f := structField(cur, "Spec").FieldByName("Replicas"); f.IsValid() {
			f.Set(reflect.ValueOf(&replicas))
		}
		return cur, nil
	})
	if err != nil {
		return err
	}
	writeObject(w, http.StatusOK, output{yaml: out.yaml}, scaleOf(res))
	return nil
}

// scaleOf builds the Scale view of a workload with spec.replicas,
// status.replicas and spec.selector.
func scaleOf(obj runtime.Object) *autoscalingv1.Scale {
	m := accessor(obj)
	sc := &autoscalingv1.Scale{
		TypeMeta: metav1.TypeMeta{Kind: "Scale", APIVersion: "autoscaling/v1"},
		ObjectMeta: metav1.ObjectMeta{Name: m.GetName(), Namespace: m.GetNamespace(), UID: m.GetUID(),
			ResourceVersion: m.GetResourceVersion(), CreationTimestamp: m.GetCreationTimestamp()},
	}
	spec := structField(obj, "Spec")
	if f := spec.FieldByName("Replicas"); f.IsValid() && !f.IsNil() {
		sc.Spec.Replicas = int32(f.Elem().Int())
	}
	if f := structField(obj, "Status").FieldByName("Replicas"); f.IsValid() {
		sc.Status.Replicas = int32(f.Int())
	}
	if f := spec.FieldByName("Selector"); f.IsValid() && !f.IsNil() {
		if sel, ok := f.Interface().(*metav1.LabelSelector); ok {
			if s, err := metav1.LabelSelectorAsSelector(sel); err == nil {
				sc.Status.Selector = s.String()
			}
		}
	}
	return sc
}
