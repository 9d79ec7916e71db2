package limitranger

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func rl(kv ...string) corev1.ResourceList {
	out := corev1.ResourceList{}
	for i := 0; i+1 < len(kv); i += 2 {
		out[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return out
}

func limitRange(items ...corev1.LimitRangeItem) *corev1.LimitRange {
	return &corev1.LimitRange{ObjectMeta: metav1.ObjectMeta{Name: "lr"}, Spec: corev1.LimitRangeSpec{Limits: items}}
}

func container(name string, requests, limits corev1.ResourceList) corev1.Container {
	return corev1.Container{Name: name, Image: "busybox", Resources: corev1.ResourceRequirements{Requests: requests, Limits: limits}}
}

func pod(cs ...corev1.Container) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p"}, Spec: corev1.PodSpec{Containers: cs}}
}

func TestPodDefaults(t *testing.T) {
	lr := limitRange(corev1.LimitRangeItem{Type: corev1.LimitTypeContainer,
		Default: rl("cpu", "500m", "memory", "256Mi"), DefaultRequest: rl("cpu", "100m", "memory", "128Mi")})
	cases := []struct {
		name       string
		pod        *corev1.Pod
		want       []corev1.ResourceRequirements // per container, then init container
		annotation string
	}{{
		name:       "all defaults",
		pod:        pod(container("a", nil, nil)),
		want:       []corev1.ResourceRequirements{{Requests: rl("cpu", "100m", "memory", "128Mi"), Limits: rl("cpu", "500m", "memory", "256Mi")}},
		annotation: "LimitRanger plugin set: cpu, memory request for container a; cpu, memory limit for container a",
	}, {
		name:       "what is set stays",
		pod:        pod(container("a", rl("cpu", "50m"), rl("cpu", "1", "memory", "1Gi"))),
		want:       []corev1.ResourceRequirements{{Requests: rl("cpu", "50m", "memory", "128Mi"), Limits: rl("cpu", "1", "memory", "1Gi")}},
		annotation: "LimitRanger plugin set: memory request for container a",
	}, {
		name: "init containers too",
		pod: func() *corev1.Pod {
			p := pod(container("a", rl("cpu", "1", "memory", "1Gi"), rl("cpu", "1", "memory", "1Gi")))
			p.Spec.InitContainers = []corev1.Container{container("init", nil, nil)}
			return p
		}(),
		want: []corev1.ResourceRequirements{
			{Requests: rl("cpu", "1", "memory", "1Gi"), Limits: rl("cpu", "1", "memory", "1Gi")},
			{Requests: rl("cpu", "100m", "memory", "128Mi"), Limits: rl("cpu", "500m", "memory", "256Mi")},
		},
		annotation: "LimitRanger plugin set: cpu, memory request for init container init; cpu, memory limit for init container init",
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			PodDefaults(lr, tc.pod)
			got := []corev1.ResourceRequirements{}
			for _, c := range append(tc.pod.Spec.Containers, tc.pod.Spec.InitContainers...) {
				got = append(got, c.Resources)
			}
			if !equality.Semantic.DeepEqual(got, tc.want) {
				t.Errorf("resources %v, want %v", got, tc.want)
			}
			if a := tc.pod.Annotations[annotation]; a != tc.annotation {
				t.Errorf("annotation %q, want %q", a, tc.annotation)
			}
		})
	}
}

func TestValidatePod(t *testing.T) {
	cases := []struct {
		name string
		lr   *corev1.LimitRange
		pod  *corev1.Pod
		want string // "" = admitted
	}{{
		name: "container under max",
		lr:   limitRange(corev1.LimitRangeItem{Type: corev1.LimitTypeContainer, Max: rl("cpu", "1")}),
		pod:  pod(container("a", rl("cpu", "500m"), rl("cpu", "1"))),
	}, {
		name: "container limit over max",
		lr:   limitRange(corev1.LimitRangeItem{Type: corev1.LimitTypeContainer, Max: rl("cpu", "1")}),
		pod:  pod(container("a", rl("cpu", "1"), rl("cpu", "2"))),
		want: "maximum cpu usage per Container is 1, but limit is 2",
	}, {
		name: "container without limit under a max",
		lr:   limitRange(corev1.LimitRangeItem{Type: corev1.LimitTypeContainer, Max: rl("memory", "1Gi")}),
		pod:  pod(container("a", nil, nil)),
		want: "maximum memory usage per Container is 1Gi.  No limit is specified",
	}, {
		name: "container request under min",
		lr:   limitRange(corev1.LimitRangeItem{Type: corev1.LimitTypeContainer, Min: rl("cpu", "100m")}),
		pod:  pod(container("a", rl("cpu", "50m"), nil)),
		want: "minimum cpu usage per Container is 100m, but request is 50m",
	}, {
		name: "container without request under a min",
		lr:   limitRange(corev1.LimitRangeItem{Type: corev1.LimitTypeContainer, Min: rl("cpu", "100m")}),
		pod:  pod(container("a", nil, nil)),
		want: "minimum cpu usage per Container is 100m.  No request is specified",
	}, {
		name: "init container checked too",
		lr:   limitRange(corev1.LimitRangeItem{Type: corev1.LimitTypeContainer, Max: rl("cpu", "1")}),
		pod: func() *corev1.Pod {
			p := pod(container("a", rl("cpu", "1"), rl("cpu", "1")))
			p.Spec.InitContainers = []corev1.Container{container("i", rl("cpu", "1"), rl("cpu", "3"))}
			return p
		}(),
		want: "maximum cpu usage per Container is 1, but limit is 3",
	}, {
		name: "ratio exceeded",
		lr:   limitRange(corev1.LimitRangeItem{Type: corev1.LimitTypeContainer, MaxLimitRequestRatio: rl("cpu", "2")}),
		pod:  pod(container("a", rl("cpu", "100m"), rl("cpu", "500m"))),
		want: "cpu max limit to request ratio per Container is 2, but provided ratio is 5.000000",
	}, {
		name: "ratio met",
		lr:   limitRange(corev1.LimitRangeItem{Type: corev1.LimitTypeContainer, MaxLimitRequestRatio: rl("cpu", "2")}),
		pod:  pod(container("a", rl("cpu", "250m"), rl("cpu", "500m"))),
	}, {
		name: "pod sums its containers",
		lr:   limitRange(corev1.LimitRangeItem{Type: corev1.LimitTypePod, Max: rl("memory", "1Gi")}),
		pod:  pod(container("a", rl("memory", "512Mi"), rl("memory", "768Mi")), container("b", rl("memory", "256Mi"), rl("memory", "512Mi"))),
		want: "maximum memory usage per Pod is 1Gi, but limit is 1280Mi",
	}, {
		name: "pod min on requests",
		lr:   limitRange(corev1.LimitRangeItem{Type: corev1.LimitTypePod, Min: rl("cpu", "200m")}),
		pod:  pod(container("a", rl("cpu", "100m"), nil), container("b", rl("cpu", "100m"), nil)),
	}, {
		name: "several violations",
		lr:   limitRange(corev1.LimitRangeItem{Type: corev1.LimitTypeContainer, Max: rl("cpu", "1", "memory", "1Gi")}),
		pod:  pod(container("a", rl("cpu", "2", "memory", "2Gi"), rl("cpu", "2", "memory", "2Gi"))),
		want: "maximum",
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := ValidatePod(tc.lr, tc.pod)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("rejected: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestValidateClaim(t *testing.T) {
	lr := limitRange(corev1.LimitRangeItem{Type: corev1.LimitTypePersistentVolumeClaim, Min: rl("storage", "1Gi"), Max: rl("storage", "10Gi")})
	cases := []struct {
		name    string
		request corev1.ResourceList
		want    string
	}{
		{name: "in bounds", request: rl("storage", "5Gi")},
		{name: "too small", request: rl("storage", "500Mi"), want: "minimum storage usage per PersistentVolumeClaim is 1Gi, but request is 500Mi"},
		{name: "too large", request: rl("storage", "20Gi"), want: "maximum storage usage per PersistentVolumeClaim is 10Gi, but request is 20Gi"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pvc := &corev1.PersistentVolumeClaim{Spec: corev1.PersistentVolumeClaimSpec{Resources: corev1.VolumeResourceRequirements{Requests: tc.request}}}
			err := ValidateClaim(lr, pvc)
			if (tc.want == "") != (err == nil) || (err != nil && err.Error() != tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}
