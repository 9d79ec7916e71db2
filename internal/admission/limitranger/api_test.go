package limitranger_test

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"skiff.dev/skiff/internal/testenv"
)

func rl(kv ...string) corev1.ResourceList {
	out := corev1.ResourceList{}
	for i := 0; i+1 < len(kv); i += 2 {
		out[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return out
}

func pod(name string, res corev1.ResourceRequirements) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox", Resources: res}}},
	}
}

// TestLimitRangeThroughTheAPI serves LimitRange and applies it to pods
// and claims created right after it, with upstream's answers.
func TestLimitRangeThroughTheAPI(t *testing.T) {
	env := testenv.Start(t, testenv.WithoutControllers)
	ctx := context.Background()
	ns := "limits"
	if _, err := env.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	lrs := env.Client.CoreV1().LimitRanges(ns)
	_, err := lrs.Create(ctx, &corev1.LimitRange{
		ObjectMeta: metav1.ObjectMeta{Name: "bad"},
		Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{
			Type: corev1.LimitTypeContainer, Min: rl("cpu", "2"), Max: rl("cpu", "1"),
		}}},
	}, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) {
		t.Fatalf("min above max: %v, want 422", err)
	}
	lr, err := lrs.Create(ctx, &corev1.LimitRange{
		ObjectMeta: metav1.ObjectMeta{Name: "lr"},
		Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{
			{Type: corev1.LimitTypeContainer, Max: rl("cpu", "1", "memory", "1Gi"), DefaultRequest: rl("cpu", "100m")},
			{Type: corev1.LimitTypePersistentVolumeClaim, Max: rl("storage", "10Gi")},
		}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// Upstream's defaults: the default limit is the max.
	if d := lr.Spec.Limits[0].Default; d.Cpu().String() != "1" || d.Memory().String() != "1Gi" {
		t.Errorf("defaulted default limits %v", d)
	}
	if dr := lr.Spec.Limits[0].DefaultRequest; dr.Cpu().String() != "100m" || dr.Memory().String() != "1Gi" {
		t.Errorf("defaulted default requests %v", dr)
	}

	pods := env.Client.CoreV1().Pods(ns)
	_, err = pods.Create(ctx, pod("x", corev1.ResourceRequirements{Limits: rl("cpu", "2")}), metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) || err.Error() != `pods "x" is forbidden: maximum cpu usage per Container is 1, but limit is 2` {
		t.Fatalf("pod over the max: %v", err)
	}
	p, err := pods.Create(ctx, pod("defaulted", corev1.ResourceRequirements{}), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := p.Spec.Containers[0].Resources
	if r.Limits.Cpu().String() != "1" || r.Limits.Memory().String() != "1Gi" || r.Requests.Cpu().String() != "100m" || r.Requests.Memory().String() != "1Gi" {
		t.Errorf("defaulted resources %v", r)
	}
	if p.Annotations["kubernetes.io/limit-ranger"] != "LimitRanger plugin set: cpu, memory request for container c; cpu, memory limit for container c" {
		t.Errorf("annotation %q", p.Annotations["kubernetes.io/limit-ranger"])
	}
	if p.Status.QOSClass != corev1.PodQOSBurstable {
		t.Errorf("QoS class %s after defaults, want Burstable", p.Status.QOSClass)
	}

	claims := env.Client.CoreV1().PersistentVolumeClaims(ns)
	claim := func(name, size string) *corev1.PersistentVolumeClaim {
		return &corev1.PersistentVolumeClaim{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: corev1.PersistentVolumeClaimSpec{
				AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
				Resources:   corev1.VolumeResourceRequirements{Requests: rl("storage", size)},
			},
		}
	}
	if _, err := claims.Create(ctx, claim("small", "1Gi"), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	_, err = claims.Create(ctx, claim("big", "20Gi"), metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) || err.Error() != `persistentvolumeclaims "big" is forbidden: maximum storage usage per PersistentVolumeClaim is 10Gi, but request is 20Gi` {
		t.Fatalf("claim over the max: %v", err)
	}

	// Other namespaces are not limited.
	if _, err := env.Client.CoreV1().Pods("default").Create(ctx, pod("free", corev1.ResourceRequirements{Limits: rl("cpu", "4")}), metav1.CreateOptions{}); err != nil {
		t.Fatalf("pod in a namespace without limits: %v", err)
	}
}
