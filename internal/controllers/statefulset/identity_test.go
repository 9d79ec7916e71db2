package statefulset

import (
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func TestOrdinalOf(t *testing.T) {
	set := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "web"}}
	cases := []struct {
		name string
		want int
	}{
		{"web-0", 0},
		{"web-12", 12},
		{"web-01", -1},
		{"web-", -1},
		{"web", -1},
		{"web-x", -1},
		{"web-1-2", -1},
		{"webby-1", -1},
		{"web--1", -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := ordinalOf(set, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: tc.name}}); got != tc.want {
				t.Errorf("ordinalOf(%q) = %d, want %d", tc.name, got, tc.want)
			}
		})
	}
}

func TestNewPodStorage(t *testing.T) {
	set := &appsv1.StatefulSet{
		ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "ns", UID: "u1"},
		Spec: appsv1.StatefulSetSpec{
			ServiceName: "db-svc",
			VolumeClaimTemplates: []corev1.PersistentVolumeClaim{
				{ObjectMeta: metav1.ObjectMeta{Name: "data"}},
				{ObjectMeta: metav1.ObjectMeta{Name: "logs"}},
			},
		},
	}
	rev := &revision{Name: "db-abc", Template: corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "db"}},
		Spec: corev1.PodSpec{Volumes: []corev1.Volume{
			{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			{Name: "config", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		}},
	}}
	pod := newPod(set, rev, 4)
	if pod.Name != "db-4" || pod.Spec.Hostname != "db-4" || pod.Spec.Subdomain != "db-svc" {
		t.Errorf("name %q hostname %q subdomain %q", pod.Name, pod.Spec.Hostname, pod.Spec.Subdomain)
	}
	want := map[string]string{"data": "data-db-4", "logs": "logs-db-4", "config": ""}
	if len(pod.Spec.Volumes) != len(want) {
		t.Fatalf("volumes %+v", pod.Spec.Volumes)
	}
	for _, v := range pod.Spec.Volumes {
		got := ""
		if v.PersistentVolumeClaim != nil {
			got = v.PersistentVolumeClaim.ClaimName
		}
		if got != want[v.Name] {
			t.Errorf("volume %s: claim %q, want %q", v.Name, got, want[v.Name])
		}
	}
	if !identityMatches(set, pod, 4) || identityMatches(set, pod, 3) {
		t.Error("identityMatches disagrees with newPod")
	}
	if pod.Labels["app"] != "db" || pod.Labels[RevisionLabel] != "db-abc" || rev.Template.Labels[RevisionLabel] != "" {
		t.Errorf("labels %v (template %v)", pod.Labels, rev.Template.Labels)
	}
}

func TestRevisionFor(t *testing.T) {
	current, update := &revision{Name: "current"}, &revision{Name: "update"}
	rolling := func(partition *int32) appsv1.StatefulSetUpdateStrategy {
		s := appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType}
		if partition != nil {
			s.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{Partition: partition}
		}
		return s
	}
	cases := []struct {
		name     string
		strategy appsv1.StatefulSetUpdateStrategy
		start    int32
		// currentReplicas is status.currentReplicas.
		currentReplicas int32
		ord             int
		want            string
	}{
		{"below the partition", rolling(ptr.To[int32](2)), 0, 0, 1, "current"},
		{"at the partition", rolling(ptr.To[int32](2)), 0, 0, 2, "update"},
		{"partition with a start ordinal", rolling(ptr.To[int32](12)), 10, 0, 11, "current"},
		{"no rollingUpdate, among the current pods", rolling(nil), 0, 2, 1, "current"},
		{"no rollingUpdate, past the current pods", rolling(nil), 0, 2, 2, "update"},
		{"OnDelete", appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}, 0, 3, 0, "update"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			set := &appsv1.StatefulSet{Spec: appsv1.StatefulSetSpec{UpdateStrategy: tc.strategy, Ordinals: &appsv1.StatefulSetOrdinals{Start: tc.start}},
				Status: appsv1.StatefulSetStatus{CurrentReplicas: tc.currentReplicas}}
			r := &reconciler{set: set, current: current, update: update}
			if got := r.revisionFor(tc.ord).Name; got != tc.want {
				t.Errorf("revisionFor(%d) = %s, want %s", tc.ord, got, tc.want)
			}
		})
	}
}

func TestRevisions(t *testing.T) {
	set := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "web"}}
	set.Spec.Template.Spec.Containers = []corev1.Container{{Name: "c", Image: "a"}}
	current, update, err := revisions(set)
	if err != nil {
		t.Fatal(err)
	}
	if current != update {
		t.Fatal("without an annotation the current revision is the update revision")
	}
	again, _ := templateRevision(set)
	if again.Name != update.Name {
		t.Errorf("hash not stable: %s, %s", again.Name, update.Name)
	}
	set.Annotations = map[string]string{CurrentRevisionAnnotation: `{"name":"web-old","template":{"spec":{"containers":[{"name":"c","image":"old"}]}}}`}
	set.Spec.Template.Spec.Containers[0].Image = "b"
	current, update, _ = revisions(set)
	if current.Name != "web-old" || current.Template.Spec.Containers[0].Image != "old" || update.Name == again.Name {
		t.Errorf("current %+v, update %s", current, update.Name)
	}
}
