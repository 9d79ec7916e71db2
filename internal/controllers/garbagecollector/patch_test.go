package garbagecollector

import (
	"encoding/json"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestPatchBuilders(t *testing.T) {
	yes := true
	obj := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{
		UID:        "me",
		Finalizers: []string{"a", metav1.FinalizerOrphanDependents},
		OwnerReferences: []metav1.OwnerReference{
			{UID: "o1", BlockOwnerDeletion: &yes},
			{UID: "o2"},
			{UID: "o3", BlockOwnerDeletion: &yes},
		},
	}}
	cases := []struct {
		name  string
		build patchBuilder
		want  string
	}{{
		name:  "remove two references, last first",
		build: removeOwnerRefs("o1", "o3"),
		want: `[{"op":"test","path":"/metadata/uid","value":"me"},` +
			`{"op":"test","path":"/metadata/ownerReferences/2/uid","value":"o3"},{"op":"remove","path":"/metadata/ownerReferences/2"},` +
			`{"op":"test","path":"/metadata/ownerReferences/0/uid","value":"o1"},{"op":"remove","path":"/metadata/ownerReferences/0"}]`,
	}, {
		name:  "remove an absent reference",
		build: removeOwnerRefs("nobody"),
		want:  `null`,
	}, {
		name:  "unblock only blocking references",
		build: unblockOwnerRefs("o2", "o3"),
		want: `[{"op":"test","path":"/metadata/uid","value":"me"},` +
			`{"op":"test","path":"/metadata/ownerReferences/2/uid","value":"o3"},{"op":"replace","path":"/metadata/ownerReferences/2/blockOwnerDeletion","value":false}]`,
	}, {
		name:  "remove a finalizer",
		build: removeFinalizer(metav1.FinalizerOrphanDependents),
		want: `[{"op":"test","path":"/metadata/uid","value":"me"},` +
			`{"op":"test","path":"/metadata/finalizers/1","value":"orphan"},{"op":"remove","path":"/metadata/finalizers/1"}]`,
	}, {
		name:  "remove an absent finalizer",
		build: removeFinalizer(metav1.FinalizerDeleteDependents),
		want:  `null`,
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := json.Marshal(tc.build(obj))
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}
