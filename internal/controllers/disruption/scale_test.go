package disruption

import (
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	appslisters "k8s.io/client-go/listers/apps/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
)

func TestFindScale(t *testing.T) {
	index := func(objs ...any) cache.Indexer {
		i := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
		for _, o := range objs {
			i.Add(o)
		}
		return i
	}
	meta := func(name, uid string, owner ...metav1.OwnerReference) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID(uid), OwnerReferences: owner}
	}
	ctrl := func(kind, name, uid string) metav1.OwnerReference {
		return metav1.OwnerReference{APIVersion: "apps/v1", Kind: kind, Name: name, UID: types.UID(uid), Controller: ptr.To(true)}
	}
	c := &Controller{
		rsLister: appslisters.NewReplicaSetLister(index(
			&appsv1.ReplicaSet{ObjectMeta: meta("web-abc", "rs1", ctrl("Deployment", "web", "d1")), Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](2)}},
			&appsv1.ReplicaSet{ObjectMeta: meta("bare", "rs2"), Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](4)}},
		)),
		dLister:  appslisters.NewDeploymentLister(index(&appsv1.Deployment{ObjectMeta: meta("web", "d1"), Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](5)}})),
		ssLister: appslisters.NewStatefulSetLister(index(&appsv1.StatefulSet{ObjectMeta: meta("db", "ss1"), Spec: appsv1.StatefulSetSpec{Replicas: ptr.To[int32](3)}})),
	}
	cases := []struct {
		name  string
		ref   metav1.OwnerReference
		uid   string
		scale int32
		found bool
		err   string
	}{
		{name: "deployment through its replica set", ref: ctrl("ReplicaSet", "web-abc", "rs1"), uid: "d1", scale: 5, found: true},
		{name: "bare replica set", ref: ctrl("ReplicaSet", "bare", "rs2"), uid: "rs2", scale: 4, found: true},
		{name: "stateful set", ref: ctrl("StatefulSet", "db", "ss1"), uid: "ss1", scale: 3, found: true},
		{name: "replica set with another uid", ref: ctrl("ReplicaSet", "bare", "other")},
		{name: "missing stateful set", ref: ctrl("StatefulSet", "gone", "x")},
		{name: "daemon set", ref: ctrl("DaemonSet", "agent", "ds1"), err: "daemonsets.apps does not implement the scale subresource"},
		{name: "unknown kind", ref: metav1.OwnerReference{APIVersion: "example.com/v1", Kind: "Widget", Name: "w"}, err: "no matches for kind"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			uid, scale, found, err := c.findScale(&tc.ref, "ns")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || found != tc.found || string(uid) != tc.uid || scale != tc.scale {
				t.Errorf("got %q %d %v %v, want %q %d %v", uid, scale, found, err, tc.uid, tc.scale, tc.found)
			}
		})
	}
}
