package namespace

import (
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"skiff.dev/skiff/internal/resources"
)

func TestNamespacedResources(t *testing.T) {
	got := map[string]string{}
	for _, r := range namespacedResources(resources.All) {
		key := schema.GroupResource{Group: r.Group, Resource: r.Plural}.String()
		if _, dup := got[key]; dup {
			t.Errorf("%s listed twice", key)
		}
		got[key] = r.Version
	}
	for key, want := range map[string]string{
		"pods": "v1", "configmaps": "v1", "deployments.apps": "v1", "horizontalpodautoscalers.autoscaling": "v2",
	} {
		if got[key] != want {
			t.Errorf("%s: version %q, want %q", key, got[key], want)
		}
	}
	for _, key := range []string{"namespaces", "nodes", "ingressclasses.networking.k8s.io"} {
		if _, ok := got[key]; ok {
			t.Errorf("%s is not namespaced but is listed", key)
		}
	}
}

func TestConditions(t *testing.T) {
	type cond struct {
		status  corev1.ConditionStatus
		reason  string
		message string
	}
	cases := []struct {
		name string
		left remaining
		err  error
		want map[corev1.NamespaceConditionType]cond
	}{{
		name: "empty",
		want: map[corev1.NamespaceConditionType]cond{
			corev1.NamespaceDeletionContentFailure: {corev1.ConditionFalse, "ContentDeleted", "All content successfully deleted, may be waiting on finalization"},
			corev1.NamespaceContentRemaining:       {corev1.ConditionFalse, "ContentRemoved", "All content successfully removed"},
			corev1.NamespaceFinalizersRemaining:    {corev1.ConditionFalse, "ContentHasNoFinalizers", "All content-preserving finalizers finished"},
		},
	}, {
		name: "content held by finalizers",
		left: remaining{
			byResource:  map[schema.GroupResource]int{{Resource: "configmaps"}: 2, {Group: "apps", Resource: "deployments"}: 1},
			byFinalizer: map[string]int{"b.example/x": 1, "a.example/y": 2},
		},
		want: map[corev1.NamespaceConditionType]cond{
			corev1.NamespaceContentRemaining: {corev1.ConditionTrue, "SomeResourcesRemain",
				"Some resources are remaining: configmaps has 2 resource instances, deployments.apps has 1 resource instances"},
			corev1.NamespaceFinalizersRemaining: {corev1.ConditionTrue, "SomeFinalizersRemain",
				"Some content in the namespace has finalizers remaining: a.example/y in 2 resource instances, b.example/x in 1 resource instances"},
		},
	}, {
		name: "deletion failed",
		err:  errors.Join(errors.New("list pods: boom"), errors.New("delete secrets: bang")),
		want: map[corev1.NamespaceConditionType]cond{
			corev1.NamespaceDeletionContentFailure: {corev1.ConditionTrue, "ContentDeletionFailed",
				"Failed to delete all resource types, 2 remaining: list pods: boom, delete secrets: bang"},
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := conditions(tc.left, tc.err)
			if len(got) != len(conditionTypes) {
				t.Fatalf("%d conditions, want %d", len(got), len(conditionTypes))
			}
			for _, c := range got {
				want, ok := tc.want[c.Type]
				if !ok {
					continue
				}
				if (cond{c.Status, c.Reason, c.Message}) != want {
					t.Errorf("%s = %+v\nwant %+v", c.Type, cond{c.Status, c.Reason, c.Message}, want)
				}
			}
		})
	}
}

func TestSetConditions(t *testing.T) {
	t0 := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	t1 := metav1.NewTime(t0.Add(time.Minute))
	remain := func(status corev1.ConditionStatus, msg string) corev1.NamespaceCondition {
		return corev1.NamespaceCondition{Type: corev1.NamespaceContentRemaining, Status: status, Reason: "r", Message: msg}
	}
	at := func(c corev1.NamespaceCondition, t metav1.Time) corev1.NamespaceCondition {
		c.LastTransitionTime = t
		return c
	}
	cases := []struct {
		name        string
		have        []corev1.NamespaceCondition
		want        corev1.NamespaceCondition
		wantChanged bool
		wantTime    metav1.Time
	}{
		{"new", nil, remain(corev1.ConditionTrue, "a"), true, t1},
		{"same", []corev1.NamespaceCondition{at(remain(corev1.ConditionTrue, "a"), t0)}, remain(corev1.ConditionTrue, "a"), false, t0},
		{"new message, same status", []corev1.NamespaceCondition{at(remain(corev1.ConditionTrue, "a"), t0)}, remain(corev1.ConditionTrue, "b"), true, t0},
		{"status flips", []corev1.NamespaceCondition{at(remain(corev1.ConditionTrue, "a"), t0)}, remain(corev1.ConditionFalse, "a"), true, t1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			st := corev1.NamespaceStatus{Conditions: tc.have}
			if changed := setConditions(&st, []corev1.NamespaceCondition{tc.want}, t1); changed != tc.wantChanged {
				t.Errorf("changed = %v, want %v", changed, tc.wantChanged)
			}
			if len(st.Conditions) != 1 {
				t.Fatalf("conditions = %v", st.Conditions)
			}
			got := st.Conditions[0]
			if got.Message != tc.want.Message || got.Status != tc.want.Status || !got.LastTransitionTime.Equal(&tc.wantTime) {
				t.Errorf("got %+v, want %+v at %v", got, tc.want, tc.wantTime)
			}
		})
	}
}
