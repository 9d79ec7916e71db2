package garbagecollector

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

func TestMetaChanged(t *testing.T) {
	yes, now := true, metav1.Now()
	base := metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{
		UID: "u", OwnerReferences: []metav1.OwnerReference{{UID: "o", Name: "o", Kind: "K", APIVersion: "v1"}},
	}}
	cases := []struct {
		name   string
		change func(m *metav1.PartialObjectMetadata)
		want   bool
	}{
		{"labels only", func(m *metav1.PartialObjectMetadata) { m.Labels = map[string]string{"a": "b"} }, false},
		{"reference added", func(m *metav1.PartialObjectMetadata) {
			m.OwnerReferences = append(m.OwnerReferences, metav1.OwnerReference{UID: types.UID("p")})
		}, true},
		{"reference starts blocking", func(m *metav1.PartialObjectMetadata) { m.OwnerReferences[0].BlockOwnerDeletion = &yes }, true},
		{"deletion starts", func(m *metav1.PartialObjectMetadata) { m.DeletionTimestamp = &now }, true},
		{"finalizer added", func(m *metav1.PartialObjectMetadata) { m.Finalizers = []string{"x"} }, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cur := base.DeepCopy()
			tc.change(cur)
			if got := metaChanged(&base, cur); got != tc.want {
				t.Errorf("metaChanged = %v, want %v", got, tc.want)
			}
		})
	}
}
