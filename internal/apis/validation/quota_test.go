package validation

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

const quotaDoc = `
metadata: {name: q, namespace: default}
spec:
  hard: {pods: "10", requests.cpu: "2", limits.memory: 4Gi, count/deployments.apps: "3", services.nodeports: "2"}
`

func TestValidateResourceQuota(t *testing.T) {
	quota := func(m ...func(*corev1.ResourceQuota)) *corev1.ResourceQuota {
		return build[corev1.ResourceQuota](t, quotaDoc, m...)
	}
	hard := func(name string, v string) func(*corev1.ResourceQuota) {
		return func(q *corev1.ResourceQuota) {
			q.Spec.Hard = corev1.ResourceList{corev1.ResourceName(name): resource.MustParse(v)}
		}
	}
	cases := []createCase{
		{name: "quota/valid", obj: quota()},
		{name: "quota/no namespace", obj: quota(func(q *corev1.ResourceQuota) { q.Namespace = "" }),
			want: []want{required("metadata.namespace")}},
		{name: "quota/unknown resource", obj: quota(hard("foo", "1")),
			want: []want{invalid("spec.hard[foo]", "must be a standard resource type or fully qualified"),
				invalid("spec.hard[foo]", "must be a standard resource for quota")}},
		{name: "quota/storage is not a quota resource", obj: quota(hard("storage", "1Gi")),
			want: []want{invalid("spec.hard[storage]", "must be a standard resource for quota")}},
		{name: "quota/negative", obj: quota(hard("cpu", "-1")),
			want: []want{invalid("spec.hard[cpu]", "must be greater than or equal to 0")}},
		{name: "quota/fractional count", obj: quota(hard("pods", "1500m")),
			want: []want{invalid("spec.hard[pods]", "must be an integer")}},
		{name: "quota/fractional extended resource", obj: quota(hard("example.com/gpu", "500m")),
			want: []want{invalid("spec.hard[example.com/gpu]", "must be an integer")}},
		{name: "quota/hugepages", obj: quota(hard("requests.hugepages-2Mi", "1Gi"))},
		{name: "quota/storage class", obj: quota(hard("gold.storageclass.storage.k8s.io/requests.storage", "10Gi"))},
		{name: "quota/bad qualified name", obj: quota(hard("count/-bad", "1")),
			want: []want{invalid("spec.hard[count/-bad]")}},
		{name: "quota/scope", obj: quota(hard("pods", "1"), func(q *corev1.ResourceQuota) {
			q.Spec.Scopes = []corev1.ResourceQuotaScope{corev1.ResourceQuotaScopeBestEffort}
		})},
		{name: "quota/unsupported scope", obj: quota(hard("pods", "1"), func(q *corev1.ResourceQuota) {
			q.Spec.Scopes = []corev1.ResourceQuotaScope{"Sometimes"}
		}), want: []want{invalid("spec.scopes", "unsupported scope")}},
		{name: "quota/scope not for resource", obj: quota(hard("requests.cpu", "1"), func(q *corev1.ResourceQuota) {
			q.Spec.Scopes = []corev1.ResourceQuotaScope{corev1.ResourceQuotaScopeBestEffort}
		}), want: []want{invalid("spec.scopes", "unsupported scope applied to resource")}},
		{name: "quota/conflicting scopes", obj: quota(hard("pods", "1"), func(q *corev1.ResourceQuota) {
			q.Spec.Scopes = []corev1.ResourceQuotaScope{corev1.ResourceQuotaScopeTerminating, corev1.ResourceQuotaScopeNotTerminating}
		}), want: []want{invalid("spec.scopes", "conflicting scopes")}},
		{name: "quota/scope selector", obj: quota(hard("pods", "1"), func(q *corev1.ResourceQuota) {
			q.Spec.ScopeSelector = &corev1.ScopeSelector{MatchExpressions: []corev1.ScopedResourceSelectorRequirement{
				{ScopeName: corev1.ResourceQuotaScopePriorityClass, Operator: corev1.ScopeSelectorOpIn, Values: []string{"high"}}}}
		})},
		{name: "quota/scope selector needs values", obj: quota(hard("pods", "1"), func(q *corev1.ResourceQuota) {
			q.Spec.ScopeSelector = &corev1.ScopeSelector{MatchExpressions: []corev1.ScopedResourceSelectorRequirement{
				{ScopeName: corev1.ResourceQuotaScopePriorityClass, Operator: corev1.ScopeSelectorOpIn}}}
		}), want: []want{required("spec.scopeSelector.matchExpressions.values")}},
		{name: "quota/scope selector operator", obj: quota(hard("pods", "1"), func(q *corev1.ResourceQuota) {
			q.Spec.ScopeSelector = &corev1.ScopeSelector{MatchExpressions: []corev1.ScopedResourceSelectorRequirement{
				{ScopeName: corev1.ResourceQuotaScopeBestEffort, Operator: corev1.ScopeSelectorOpIn, Values: []string{"x"}}}}
		}), want: []want{invalid("spec.scopeSelector.matchExpressions.operator", "must be 'Exist'")}},
		{name: "quota/bad status", obj: quota(func(q *corev1.ResourceQuota) {
			q.Status.Used = corev1.ResourceList{"pods": resource.MustParse("-1")}
		}), want: []want{invalid("status.used[pods]")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { checkErrors(t, ValidateCreate(tc.obj), tc.want) })
	}
}

func TestValidateResourceQuotaUpdate(t *testing.T) {
	old := stored[corev1.ResourceQuota](t, quotaDoc, func(q *corev1.ResourceQuota) {
		q.Spec.Hard = corev1.ResourceList{"pods": resource.MustParse("1")}
		q.Spec.Scopes = []corev1.ResourceQuotaScope{corev1.ResourceQuotaScopeBestEffort}
	})
	cases := []struct {
		name string
		edit func(*corev1.ResourceQuota)
		want []want
	}{
		{name: "raise hard", edit: func(q *corev1.ResourceQuota) { q.Spec.Hard["pods"] = resource.MustParse("5") }},
		{name: "status", edit: func(q *corev1.ResourceQuota) { q.Status.Used = corev1.ResourceList{"pods": resource.MustParse("1")} }},
		{name: "scopes immutable", edit: func(q *corev1.ResourceQuota) {
			q.Spec.Scopes = []corev1.ResourceQuotaScope{corev1.ResourceQuotaScopeNotTerminating}
		}, want: []want{invalid("spec.scopes", "field is immutable")}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { checkErrors(t, ValidateUpdate(changed(old, tc.edit), old), tc.want) })
	}
}

func FuzzResourceQuota(f *testing.F) {
	fuzzKind[corev1.ResourceQuota](f, quotaDoc,
		`{"spec":{"hard":{"pods":"1"},"scopeSelector":{"matchExpressions":[{"scopeName":"PriorityClass","operator":"In","values":["a"]}]}}}`)
}
