package podcontrol_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"skiff.dev/skiff/internal/controllers/podcontrol"
)

func TestClaim(t *testing.T) {
	owner := &metav1.ObjectMeta{Name: "rs", Namespace: "ns", UID: "owner"}
	kind := corev1.SchemeGroupVersion.WithKind("ReplicationController")
	ours := *metav1.NewControllerRef(owner, kind)
	theirs := *metav1.NewControllerRef(&metav1.ObjectMeta{Name: "other", UID: "other"}, kind)
	matching := map[string]string{"app": "web"}
	other := map[string]string{"app": "db"}

	cases := []struct {
		name          string
		labels        map[string]string
		ref           *metav1.OwnerReference
		podDeleting   bool
		ownerDeleting bool
		namespace     string
		canAdopt      error
		wantClaimed   bool
		wantPatch     string // "", "adopt" or "release"
		wantErr       bool
	}{
		{name: "ours and matching", labels: matching, ref: &ours, wantClaimed: true},
		{name: "ours, no longer matching", labels: other, ref: &ours, wantPatch: "release"},
		{name: "ours, not matching, owner being deleted", labels: other, ref: &ours, ownerDeleting: true},
		{name: "ours, matching, owner being deleted", labels: matching, ref: &ours, ownerDeleting: true, wantClaimed: true},
		{name: "orphan matching", labels: matching, wantClaimed: true, wantPatch: "adopt"},
		{name: "orphan not matching", labels: other},
		{name: "orphan being deleted", labels: matching, podDeleting: true},
		{name: "orphan in another namespace", labels: matching, namespace: "elsewhere"},
		{name: "orphan, owner being deleted", labels: matching, ownerDeleting: true},
		{name: "orphan, owner gone meanwhile", labels: matching, canAdopt: errors.New("owner replaced"), wantErr: true},
		{name: "someone else's", labels: matching, ref: &theirs},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := owner.DeepCopy()
			if tc.ownerDeleting {
				o.DeletionTimestamp = &metav1.Time{}
			}
			p := pod("p")
			p.Labels = tc.labels
			if tc.namespace != "" {
				p.Namespace = tc.namespace
			}
			if tc.ref != nil {
				p.OwnerReferences = []metav1.OwnerReference{*tc.ref}
			}
			if tc.podDeleting {
				p.DeletionTimestamp = &metav1.Time{}
			}
			m := &podcontrol.RefManager{Owner: o, Kind: kind, Selector: labels.SelectorFromSet(matching),
				CanAdopt: func(context.Context) error { return tc.canAdopt }}
			patched := ""
			claimed, err := podcontrol.Claim(t.Context(), m, []*corev1.Pod{p}, func(_ context.Context, name string, body []byte) error {
				var doc struct {
					Metadata struct {
						OwnerReferences []map[string]any `json:"ownerReferences"`
					} `json:"metadata"`
				}
				if err := json.Unmarshal(body, &doc); err != nil || len(doc.Metadata.OwnerReferences) != 1 {
					t.Fatalf("patch %s: %s", name, body)
				}
				r := doc.Metadata.OwnerReferences[0]
				switch {
				case r["$patch"] == "delete" && r["uid"] == "owner":
					patched = "release"
				case r["uid"] == "owner" && r["controller"] == true && r["blockOwnerDeletion"] == true:
					patched = "adopt"
				default:
					t.Fatalf("unexpected patch %s", body)
				}
				return nil
			})
			if (err != nil) != tc.wantErr {
				t.Errorf("err = %v, want error %v", err, tc.wantErr)
			}
			if (len(claimed) == 1) != tc.wantClaimed {
				t.Errorf("claimed = %d pods, want claimed %v", len(claimed), tc.wantClaimed)
			}
			if patched != tc.wantPatch {
				t.Errorf("patch = %q, want %q", patched, tc.wantPatch)
			}
		})
	}
}
