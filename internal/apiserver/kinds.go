package apiserver

import (
	"fmt"
	"reflect"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"

	"skiff.dev/skiff/internal/resources"
)

// kind is one served resource with everything the handlers need to
// treat its objects generically.
type kind struct {
	resources.Resource
	gr       schema.GroupResource
	gk       schema.GroupKind
	served   schema.GroupVersionKind
	storage  schema.GroupVersionKind
	listGVK  schema.GroupVersionKind
	prefix   string // store key prefix, ends in "/"
	hasSpec  bool
	toServed func(runtime.Object) (runtime.Object, error) // storage → served form; nil when equal
	toStored func(runtime.Object) (runtime.Object, error) // served → storage form; nil when equal

	// preDecode is Config.PreDecode.
	preDecode func(gk schema.GroupKind, data []byte) ([]byte, []string, error)

	// proto says whether the Go type has protobuf marshalling; kinds
	// without it (types Skiff defines itself) are stored and served as
	// JSON.
	proto bool
}

// converters between a served version and the stored one, by served GVK.
type converter struct {
	toServed, toStored func(runtime.Object) (runtime.Object, error)
}

func newKind(r resources.Resource, conv map[schema.GroupVersionKind]converter) (*kind, error) {
	k := &kind{
		Resource: r,
		gr:       schema.GroupResource{Group: r.Group, Resource: r.Plural},
		gk:       schema.GroupKind{Group: r.Group, Kind: r.Kind},
		served:   r.GVK(),
		storage:  r.StorageGVK(),
	}
	k.listGVK = k.served.GroupVersion().WithKind(r.Kind + "List")
	group := r.Group
	if group == "" {
		group = "core"
	}
	k.prefix = "/registry/" + group + "/" + r.Plural + "/"
	obj, err := scheme.Scheme.New(k.storage)
	if err != nil {
		return nil, fmt.Errorf("resource %s: no Go type for %v: %w", r.Plural, k.storage, err)
	}
	if _, err := scheme.Scheme.New(k.listGVK); err != nil {
		return nil, fmt.Errorf("resource %s: no list type: %w", r.Plural, err)
	}
	_, k.proto = obj.(interface{ Marshal() ([]byte, error) })
	_, hasSpec := reflect.TypeOf(obj).Elem().FieldByName("Spec")
	k.hasSpec = hasSpec && r.Generation
	if k.served != k.storage {
		c, ok := conv[k.served]
		if !ok {
			return nil, fmt.Errorf("resource %s: no conversion from %v to %v", r.Plural, k.served, k.storage)
		}
		k.toServed, k.toStored = c.toServed, c.toStored
	}
	return k, nil
}

// key returns the store key of an object.
func (k *kind) key(ns, name string) string {
	if k.Namespaced {
		return k.prefix + ns + "/" + name
	}
	return k.prefix + name
}

// listPrefix is the key prefix of all objects in ns ("" = all).
func (k *kind) listPrefix(ns string) string {
	if k.Namespaced && ns != "" {
		return k.prefix + ns + "/"
	}
	return k.prefix
}

func (k *kind) newStored() runtime.Object {
	obj, _ := scheme.Scheme.New(k.storage)
	return obj
}

func (k *kind) newServed() runtime.Object {
	obj, _ := scheme.Scheme.New(k.served)
	return obj
}

func (k *kind) newServedList() runtime.Object {
	obj, _ := scheme.Scheme.New(k.listGVK)
	return obj
}

// served converts a stored object to the served form, with TypeMeta set.
func (k *kind) servedForm(obj runtime.Object) (runtime.Object, error) {
	if k.toServed != nil {
		var err error
		if obj, err = k.toServed(obj); err != nil {
			return nil, err
		}
	}
	if obj.GetObjectKind().GroupVersionKind() != k.served {
		obj.GetObjectKind().SetGroupVersionKind(k.served) // shared objects already carry it
	}
	return obj, nil
}

// storedForm converts a served object to the storage form, with TypeMeta set.
func (k *kind) storedForm(obj runtime.Object) (runtime.Object, error) {
	if k.toStored != nil {
		var err error
		if obj, err = k.toStored(obj); err != nil {
			return nil, err
		}
	}
	obj.GetObjectKind().SetGroupVersionKind(k.storage)
	return obj, nil
}

// field returns the addressable struct field name of obj, or an invalid value.
func structField(obj runtime.Object, name string) reflect.Value {
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return reflect.Value{}
	}
	return v.Elem().FieldByName(name)
}

// copyField sets dst.name to src.name (both of the same type).
func copyField(dst, src runtime.Object, name string) {
	d, s := structField(dst, name), structField(src, name)
	if d.IsValid() && s.IsValid() && d.CanSet() {
		d.Set(s)
	}
}

// zeroField resets obj.name.
func zeroField(obj runtime.Object, name string) {
	if f := structField(obj, name); f.IsValid() && f.CanSet() {
		f.Set(reflect.Zero(f.Type()))
	}
}

func accessor(obj runtime.Object) metav1.Object {
	m, err := meta.Accessor(obj)
	if err != nil {
		panic(fmt.Sprintf("object %T has no metadata: %v", obj, err))
	}
	return m
}

// qualified is "deployments.apps" or "pods", as messages name resources.
func (k *kind) qualified() string {
	if k.Group == "" {
		return k.Plural
	}
	return k.Plural + "." + k.Group
}
