package apiserver

import (
	"bytes"
	"errors"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"skiff.dev/skiff/internal/store"
)

// Protobuf lists are assembled from the stored bytes without decoding
// each object: objects are stored as protobuf in the form they are
// served, so an item is its stored message plus its resourceVersion.
// Protobuf merges a repeated embedded message field into the first, so
// appending `metadata { resourceVersion: "N" }` (field 1, then field 6 of
// ObjectMeta) sets the version. Every Kubernetes List keeps its ListMeta
// in field 1 and its items in field 2.

var protoMagic = []byte("k8s\x00")

var errNotProto = errors.New("stored value is not protobuf")

// rawProtoList encodes kvs as the served List kind of k, in protobuf.
func rawProtoList(k *kind, kvs []store.KV, rev int64, cont string, remaining *int64) ([]byte, error) {
	lm := metav1.ListMeta{ResourceVersion: strconv.FormatInt(rev, 10), Continue: cont, RemainingItemCount: remaining}
	lmBytes, err := lm.Marshal()
	if err != nil {
		return nil, err
	}
	size := len(lmBytes) + 8
	for _, kv := range kvs {
		size += len(kv.Value) + 32
	}
	body := make([]byte, 0, size)
	body = protowire.AppendTag(body, 1, protowire.BytesType)
	body = protowire.AppendBytes(body, lmBytes)
	var u runtime.Unknown
	var rvField []byte
	for _, kv := range kvs {
		if !bytes.HasPrefix(kv.Value, protoMagic) {
			return nil, errNotProto
		}
		u = runtime.Unknown{}
		if err := u.Unmarshal(kv.Value[len(protoMagic):]); err != nil {
			return nil, err
		}
		rvField = rvField[:0]
		rvField = protowire.AppendTag(rvField, 6, protowire.BytesType)
		rvField = protowire.AppendString(rvField, strconv.FormatInt(kv.Rev, 10))
		body = protowire.AppendTag(body, 2, protowire.BytesType)
		body = protowire.AppendVarint(body, uint64(len(u.Raw)+protowire.SizeTag(1)+protowire.SizeBytes(len(rvField))))
		body = append(body, u.Raw...)
		body = protowire.AppendTag(body, 1, protowire.BytesType)
		body = protowire.AppendBytes(body, rvField)
	}
	env := runtime.Unknown{
		TypeMeta: runtime.TypeMeta{APIVersion: k.listGVK.GroupVersion().String(), Kind: k.listGVK.Kind},
		Raw:      body,
	}
	out, err := env.Marshal()
	if err != nil {
		return nil, err
	}
	return append(append(make([]byte, 0, len(protoMagic)+len(out)), protoMagic...), out...), nil
}
