package deployment

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestResolveFenceposts(t *testing.T) {
	cases := []struct {
		name                       string
		surge, unavailable         *intstr.IntOrString
		desired                    int32
		wantSurge, wantUnavailable int32
	}{
		{name: "absolute", surge: num(1), unavailable: num(1), desired: 3, wantSurge: 1, wantUnavailable: 1},
		{name: "25% of 10: surge rounds up, unavailable down", surge: pct("25%"), unavailable: pct("25%"), desired: 10, wantSurge: 3, wantUnavailable: 2},
		{name: "25% of 1", surge: pct("25%"), unavailable: pct("25%"), desired: 1, wantSurge: 1, wantUnavailable: 0},
		{name: "1% of 2", surge: pct("1%"), unavailable: pct("1%"), desired: 2, wantSurge: 1, wantUnavailable: 0},
		{name: "both zero: unavailable 1", surge: num(0), unavailable: num(0), desired: 5, wantSurge: 0, wantUnavailable: 1},
		{name: "percentages rounding to zero", surge: pct("0%"), unavailable: pct("10%"), desired: 5, wantSurge: 0, wantUnavailable: 1},
		{name: "unset", desired: 4, wantSurge: 0, wantUnavailable: 1},
		{name: "100%", surge: pct("100%"), unavailable: pct("100%"), desired: 4, wantSurge: 4, wantUnavailable: 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, u, err := resolveFenceposts(tc.surge, tc.unavailable, tc.desired)
			if err != nil {
				t.Fatal(err)
			}
			if s != tc.wantSurge || u != tc.wantUnavailable {
				t.Errorf("surge, unavailable = %d, %d; want %d, %d", s, u, tc.wantSurge, tc.wantUnavailable)
			}
		})
	}
}

func TestNewReplicaSetReplicas(t *testing.T) {
	cases := []struct {
		name string
		// old ReplicaSet: spec.replicas and status.replicas.
		oldSpec, oldStatus int32
		newSpec            int32
		want               int32
	}{
		{name: "start of a rollout", oldSpec: 3, oldStatus: 3, newSpec: 0, want: 1},
		{name: "at the surge limit", oldSpec: 3, oldStatus: 3, newSpec: 1, want: 1},
		{name: "old scaled down, its pod not yet gone", oldSpec: 2, oldStatus: 3, newSpec: 1, want: 1},
		{name: "old pod gone", oldSpec: 2, oldStatus: 2, newSpec: 1, want: 2},
		{name: "never above replicas", oldSpec: 0, oldStatus: 0, newSpec: 2, want: 3},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			d := rolling(3, num(1), num(1))
			old := rs("old", tc.oldSpec)
			old.Status.Replicas = tc.oldStatus
			cur := rs("new", tc.newSpec)
			if got := newReplicaSetReplicas(d, []*appsv1.ReplicaSet{old, cur}, cur); got != tc.want {
				t.Errorf("new replicas = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestProportion(t *testing.T) {
	// 10 replicas, surge 3: the ReplicaSets were sized for 13 pods; now
	// the Deployment goes to 20 (23 with surge).
	d := rolling(20, num(3), num(2))
	cases := []struct {
		name         string
		size         int32
		toAdd, added int32
		want         int32
	}{
		{name: "share of a scale up", size: 8, toAdd: 10, want: 6}, // 8*23/13 = 14.15 → 14
		{name: "capped by what is left", size: 8, toAdd: 10, added: 7, want: 3},
		{name: "nothing to add", size: 8, toAdd: 0, want: 0},
		{name: "empty ReplicaSet gets nothing", size: 0, toAdd: 10, want: 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := rs("x", tc.size)
			setReplicasAnnotations(r, 10, 13)
			if got := proportion(r, d, tc.toAdd, tc.added); got != tc.want {
				t.Errorf("proportion = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestPodTemplateHash(t *testing.T) {
	a := &corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web", "tier": "front"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "img:v1"}}}}
	same := a.DeepCopy()
	same.Labels = map[string]string{"tier": "front", "app": "web"}
	other := a.DeepCopy()
	other.Spec.Containers[0].Image = "img:v2"
	one := int32(1)

	h := podTemplateHash(a, nil)
	if h != podTemplateHash(same, nil) {
		t.Error("equal templates hash differently")
	}
	if h == podTemplateHash(other, nil) {
		t.Error("templates with different images hash the same")
	}
	if h == podTemplateHash(a, &one) {
		t.Error("a collision count does not change the hash")
	}
	for _, r := range h {
		if r == 'a' || r == 'e' || r == 'i' || r == 'o' || r == 'u' {
			t.Errorf("hash %q has a vowel", h)
		}
	}
	if len(h) == 0 || len(h) > 10 {
		t.Errorf("hash %q: unexpected length", h)
	}
}

func TestSetNewReplicaSetAnnotations(t *testing.T) {
	d := rolling(3, num(1), num(1))
	d.Annotations = map[string]string{
		"kubernetes.io/change-cause":       "update to v2",
		corev1.LastAppliedConfigAnnotation: "{}",
		annRevision:                        "7",
	}
	cases := []struct {
		name        string
		have        map[string]string
		newRevision int64
		want        map[string]string
	}{
		{name: "new ReplicaSet", have: nil, newRevision: 2, want: map[string]string{
			"kubernetes.io/change-cause": "update to v2", annRevision: "2"}},
		{name: "rollback: revision moves on, old one kept", newRevision: 4,
			have: map[string]string{annRevision: "1", "kubernetes.io/change-cause": "create v1"},
			want: map[string]string{annRevision: "4", annRevisionHistory: "1", "kubernetes.io/change-cause": "update to v2"}},
		{name: "second rollback appends", newRevision: 6,
			have: map[string]string{annRevision: "4", annRevisionHistory: "1"},
			want: map[string]string{annRevision: "6", annRevisionHistory: "1,4", "kubernetes.io/change-cause": "update to v2"}},
		{name: "a later revision stays", newRevision: 3,
			have: map[string]string{annRevision: "5", "kubernetes.io/change-cause": "update to v2"},
			want: map[string]string{annRevision: "5", "kubernetes.io/change-cause": "update to v2"}},
		{name: "revision 10 is later than 9", newRevision: 10,
			have: map[string]string{annRevision: "9", "kubernetes.io/change-cause": "update to v2"},
			want: map[string]string{annRevision: "10", annRevisionHistory: "9", "kubernetes.io/change-cause": "update to v2"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := rs("x", 1)
			r.Annotations = tc.have
			setNewReplicaSetAnnotations(d, r, tc.newRevision, false)
			if len(r.Annotations) != len(tc.want) {
				t.Errorf("annotations = %v, want %v", r.Annotations, tc.want)
			}
			for k, v := range tc.want {
				if r.Annotations[k] != v {
					t.Errorf("annotations = %v, want %v", r.Annotations, tc.want)
					break
				}
			}
		})
	}
	long := ""
	for i := range 1000 {
		long = appendHistory(long, "1"+string(rune('0'+i%10)))
	}
	if len(long) > maxRevisionHistoryChars {
		t.Errorf("revision history grew to %d characters", len(long))
	}
}

func num(n int32) *intstr.IntOrString  { v := intstr.FromInt32(n); return &v }
func pct(p string) *intstr.IntOrString { v := intstr.FromString(p); return &v }

func rolling(n int32, surge, unavailable *intstr.IntOrString) *appsv1.Deployment {
	return &appsv1.Deployment{Spec: appsv1.DeploymentSpec{Replicas: &n, Strategy: appsv1.DeploymentStrategy{
		Type:          appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{MaxSurge: surge, MaxUnavailable: unavailable},
	}}}
}

func rs(name string, n int32) *appsv1.ReplicaSet {
	return &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: appsv1.ReplicaSetSpec{Replicas: &n}}
}
