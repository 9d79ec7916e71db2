package garbagecollector

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"skiff.dev/skiff/internal/resources"
)

func TestTable(t *testing.T) {
	tab := newTable(resources.All)
	cases := []struct {
		apiVersion, kind string
		want             string // plural@version, or "" when unknown
	}{
		{"apps/v1", "Deployment", "deployments@v1"},
		{"apps/v1beta2", "ReplicaSet", "replicasets@v1"},
		{"v1", "Node", "nodes@v1"},
		{"v1", "Namespace", "namespaces@v1"},
		{"autoscaling/v1", "HorizontalPodAutoscaler", "horizontalpodautoscalers@v2"},
		{"autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers@v2"},
		{"example.com/v1", "Widget", ""},
		{"not/a/version", "Deployment", ""},
	}
	for _, tc := range cases {
		t.Run(tc.apiVersion+"/"+tc.kind, func(t *testing.T) {
			got := ""
			if i, ok := tab.forRef(metav1.OwnerReference{APIVersion: tc.apiVersion, Kind: tc.kind}); ok {
				got = tab.list[i].Plural + "@" + tab.list[i].Version
			}
			if got != tc.want {
				t.Errorf("forRef = %q, want %q", got, tc.want)
			}
		})
	}
	seen := map[string]bool{}
	for _, r := range tab.list {
		key := r.Group + "/" + r.Plural
		if seen[key] {
			t.Errorf("%s is watched twice", key)
		}
		seen[key] = true
	}
}

func TestOwnerNamespace(t *testing.T) {
	tab := newTable(resources.All)
	node, _ := tab.forRef(metav1.OwnerReference{APIVersion: "v1", Kind: "Node"})
	cm, _ := tab.forRef(metav1.OwnerReference{APIVersion: "v1", Kind: "ConfigMap"})
	cases := []struct {
		name   string
		owner  int
		depNS  string
		wantNS string
		wantOK bool
	}{
		{"cluster-scoped owner of namespaced dependent", node, "web", "", true},
		{"cluster-scoped owner of cluster-scoped dependent", node, "", "", true},
		{"namespaced owner of namespaced dependent", cm, "web", "web", true},
		{"namespaced owner of cluster-scoped dependent", cm, "", "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ns, ok := tab.ownerNamespace(tc.owner, tc.depNS)
			if ns != tc.wantNS || ok != tc.wantOK {
				t.Errorf("ownerNamespace = %q, %v; want %q, %v", ns, ok, tc.wantNS, tc.wantOK)
			}
		})
	}
}
