package garbagecollector

import (
	"context"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Hooks for the external tests that need a real server (internal tests
// cannot import testenv: it imports the daemon, which imports this).

type PatchBuilder = patchBuilder

var (
	RemoveOwnerRefs = removeOwnerRefs
	RemoveFinalizer = removeFinalizer
)

// PatchSecret runs the collector's patch path on the Secret ns/name.
func PatchSecret(ctx context.Context, c *Controller, ns, name string, uid types.UID, stale *metav1.PartialObjectMetadata, build PatchBuilder) (bool, error) {
	gc := &collector{Controller: c}
	res, _ := gc.table.forRef(metav1.OwnerReference{APIVersion: "v1", Kind: "Secret"})
	return gc.patch(ctx, item{res: res, namespace: ns, name: name, uid: uid}, stale, build)
}
