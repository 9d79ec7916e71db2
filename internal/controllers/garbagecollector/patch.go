package garbagecollector

import (
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// jsonOp is one RFC 6902 operation. Every patch the collector sends
// starts by testing the object's UID and tests each list element before
// touching it, so a patch computed from a stale view fails (422) instead
// of changing the wrong thing.
type jsonOp struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value any    `json:"value,omitempty"`
}

// patchBuilder computes the operations to send for the current object;
// none means there is nothing to change.
type patchBuilder func(m *metav1.PartialObjectMetadata) []jsonOp

func testUID(m *metav1.PartialObjectMetadata) jsonOp {
	return jsonOp{Op: "test", Path: "/metadata/uid", Value: m.UID}
}

// removeOwnerRefs drops the owner references to any of uids.
func removeOwnerRefs(uids ...types.UID) patchBuilder {
	return func(m *metav1.PartialObjectMetadata) []jsonOp {
		var ops []jsonOp
		// Remove from the end so earlier indexes stay valid.
		for i := len(m.OwnerReferences) - 1; i >= 0; i-- {
			if uid := m.OwnerReferences[i].UID; slices.Contains(uids, uid) {
				p := fmt.Sprintf("/metadata/ownerReferences/%d", i)
				ops = append(ops, jsonOp{Op: "test", Path: p + "/uid", Value: uid}, jsonOp{Op: "remove", Path: p})
			}
		}
		if ops == nil {
			return nil
		}
		return append([]jsonOp{testUID(m)}, ops...)
	}
}

// unblockOwnerRefs sets blockOwnerDeletion=false on the references to
// any of uids that block.
func unblockOwnerRefs(uids ...types.UID) patchBuilder {
	return func(m *metav1.PartialObjectMetadata) []jsonOp {
		var ops []jsonOp
		for i, ref := range m.OwnerReferences {
			if slices.Contains(uids, ref.UID) && blocks(ref) {
				p := fmt.Sprintf("/metadata/ownerReferences/%d", i)
				ops = append(ops, jsonOp{Op: "test", Path: p + "/uid", Value: ref.UID},
					jsonOp{Op: "replace", Path: p + "/blockOwnerDeletion", Value: false})
			}
		}
		if ops == nil {
			return nil
		}
		return append([]jsonOp{testUID(m)}, ops...)
	}
}

// removeFinalizer drops finalizer name.
func removeFinalizer(name string) patchBuilder {
	return func(m *metav1.PartialObjectMetadata) []jsonOp {
		i := slices.Index(m.Finalizers, name)
		if i < 0 {
			return nil
		}
		p := fmt.Sprintf("/metadata/finalizers/%d", i)
		return []jsonOp{testUID(m), {Op: "test", Path: p, Value: name}, {Op: "remove", Path: p}}
	}
}

func blocks(ref metav1.OwnerReference) bool {
	return ref.BlockOwnerDeletion != nil && *ref.BlockOwnerDeletion
}
