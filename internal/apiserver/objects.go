package apiserver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"skiff.dev/skiff/internal/store"
)

// encode serializes a stored-form object for the store, as protobuf the
// way kube-apiserver stores it (JSON for kinds without protobuf):
// TypeMeta set, resourceVersion cleared (the store's revision is the
// version).
func (k *kind) encode(obj runtime.Object) ([]byte, error) {
	obj.GetObjectKind().SetGroupVersionKind(k.storage)
	m := accessor(obj)
	rv := m.GetResourceVersion()
	m.SetResourceVersion("")
	defer m.SetResourceVersion(rv)
	if !k.proto {
		data, err := json.Marshal(obj)
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", k.Kind, err)
		}
		return data, nil
	}
	var buf bytes.Buffer
	if err := protoSerializer.Encode(obj, &buf); err != nil {
		return nil, fmt.Errorf("encode %s: %w", k.Kind, err)
	}
	return buf.Bytes(), nil
}

// decode reads a stored value (protobuf, or JSON) into a stored-form
// object with its resourceVersion set to rev.
func (k *kind) decode(data []byte, rev int64) (runtime.Object, error) {
	obj := k.newStored()
	var err error
	if len(data) > 0 && data[0] == '{' {
		err = json.Unmarshal(data, obj)
	} else {
		_, _, err = protoSerializer.Decode(data, nil, obj)
	}
	if err != nil {
		return nil, fmt.Errorf("decode stored %s: %w", k.Kind, err)
	}
	obj.GetObjectKind().SetGroupVersionKind(k.storage)
	if rev > 0 {
		accessor(obj).SetResourceVersion(strconv.FormatInt(rev, 10))
	}
	return obj, nil
}

func (k *kind) decodeKV(kv store.KV) (runtime.Object, error) { return k.decode(kv.Value, kv.Rev) }

// partialMetadata returns the metadata-only view of obj.
func partialMetadata(obj runtime.Object) *metav1.PartialObjectMetadata {
	ma, ok := obj.(metav1.ObjectMetaAccessor)
	if !ok {
		return &metav1.PartialObjectMetadata{}
	}
	om, ok := ma.GetObjectMeta().(*metav1.ObjectMeta)
	if !ok {
		return &metav1.PartialObjectMetadata{}
	}
	pm := &metav1.PartialObjectMetadata{ObjectMeta: *om}
	pm.TypeMeta = metav1.TypeMeta{APIVersion: obj.GetObjectKind().GroupVersionKind().GroupVersion().String(), Kind: obj.GetObjectKind().GroupVersionKind().Kind}
	return pm
}

func parseRV(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid resource version %q", s)
	}
	return n, nil
}
