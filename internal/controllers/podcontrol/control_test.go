package podcontrol_test

import (
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"skiff.dev/skiff/internal/controllers/podcontrol"
)

func TestSlowStartBatch(t *testing.T) {
	cases := []struct {
		name      string
		count     int
		failFrom  int32 // calls from this one on fail; 0: none fail
		wantCalls int32
		wantOK    int
	}{
		{name: "all succeed", count: 10, wantCalls: 10, wantOK: 10},
		{name: "none", count: 0, wantCalls: 0, wantOK: 0},
		{name: "first fails", count: 10, failFrom: 1, wantCalls: 1, wantOK: 0},
		// Batches of 1, 2, 4: the third call fails, so the batch of 2 is
		// the last.
		{name: "fails in the second batch", count: 10, failFrom: 3, wantCalls: 3, wantOK: 2},
		{name: "fails in the fourth batch", count: 100, failFrom: 9, wantCalls: 15, wantOK: 8},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			ok, err := podcontrol.SlowStartBatch(tc.count, 1, func() error {
				if n := calls.Add(1); tc.failFrom > 0 && n >= tc.failFrom {
					return errors.New("refused")
				}
				return nil
			})
			if got := calls.Load(); got != tc.wantCalls {
				t.Errorf("calls = %d, want %d", got, tc.wantCalls)
			}
			if ok != tc.wantOK {
				t.Errorf("succeeded = %d, want %d", ok, tc.wantOK)
			}
			if (err != nil) != (tc.failFrom > 0) {
				t.Errorf("err = %v", err)
			}
		})
	}
}

func TestNewPod(t *testing.T) {
	owner := &metav1.ObjectMeta{Name: "web-7d9f", Namespace: "shop", UID: "owner-uid"}
	template := &corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}, Annotations: map[string]string{"a": "b"},
			Finalizers: []string{"example.com/f"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "img:v1"}}},
	}
	ref := metav1.NewControllerRef(owner, corev1.SchemeGroupVersion.WithKind("ReplicationController"))
	pod := podcontrol.NewPod(template, owner, ref)
	if pod.GenerateName != "web-7d9f-" || pod.Name != "" || pod.Namespace != "shop" {
		t.Errorf("name %q/%q+%q, want shop/web-7d9f-+generated", pod.Namespace, pod.Name, pod.GenerateName)
	}
	if pod.Labels["app"] != "web" || pod.Annotations["a"] != "b" || len(pod.Finalizers) != 1 || pod.Spec.Containers[0].Image != "img:v1" {
		t.Errorf("template not copied: %+v", pod)
	}
	if len(pod.OwnerReferences) != 1 || pod.OwnerReferences[0].UID != "owner-uid" || !*pod.OwnerReferences[0].Controller {
		t.Errorf("owner references = %+v", pod.OwnerReferences)
	}
	pod.Labels["app"] = "changed"
	if template.Labels["app"] != "web" {
		t.Error("the pod shares its labels with the template")
	}
	long := &metav1.ObjectMeta{Name: strings.Repeat("a", 253), Namespace: "shop"}
	if p := podcontrol.NewPod(template, long, nil); p.GenerateName != long.Name {
		t.Errorf("over-long owner name: generateName %q, want the name without a dash", p.GenerateName)
	}
}
