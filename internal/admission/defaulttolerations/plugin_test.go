package defaulttolerations_test

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"skiff.dev/skiff/internal/admission/defaulttolerations"
	"skiff.dev/skiff/internal/daemon"
	"skiff.dev/skiff/internal/testenv"
)

func toleration(key string, effect corev1.TaintEffect, seconds *int64) corev1.Toleration {
	return corev1.Toleration{Key: key, Operator: corev1.TolerationOpExists, Effect: effect, TolerationSeconds: seconds}
}

var (
	notReady300    = toleration(corev1.TaintNodeNotReady, corev1.TaintEffectNoExecute, ptr.To[int64](300))
	unreachable300 = toleration(corev1.TaintNodeUnreachable, corev1.TaintEffectNoExecute, ptr.To[int64](300))
)

func TestApply(t *testing.T) {
	cases := []struct {
		name string
		have []corev1.Toleration
		want []corev1.Toleration
	}{{
		name: "none",
		want: []corev1.Toleration{notReady300, unreachable300},
	}, {
		name: "own not-ready toleration kept",
		have: []corev1.Toleration{toleration(corev1.TaintNodeNotReady, corev1.TaintEffectNoExecute, ptr.To[int64](10))},
		want: []corev1.Toleration{toleration(corev1.TaintNodeNotReady, corev1.TaintEffectNoExecute, ptr.To[int64](10)), unreachable300},
	}, {
		name: "a toleration of every taint covers both",
		have: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
		want: []corev1.Toleration{{Operator: corev1.TolerationOpExists}},
	}, {
		name: "a NoSchedule toleration covers nothing",
		have: []corev1.Toleration{toleration(corev1.TaintNodeUnreachable, corev1.TaintEffectNoSchedule, nil)},
		want: []corev1.Toleration{toleration(corev1.TaintNodeUnreachable, corev1.TaintEffectNoSchedule, nil), notReady300, unreachable300},
	}, {
		name: "any effect of the key covers it",
		have: []corev1.Toleration{toleration(corev1.TaintNodeUnreachable, "", nil)},
		want: []corev1.Toleration{toleration(corev1.TaintNodeUnreachable, "", nil), notReady300},
	}}
	p := defaulttolerations.New(defaulttolerations.Options{})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pod := &corev1.Pod{Spec: corev1.PodSpec{Tolerations: tc.have}}
			p.Apply(pod)
			if !equality.Semantic.DeepEqual(pod.Spec.Tolerations, tc.want) {
				t.Errorf("tolerations %+v, want %+v", pod.Spec.Tolerations, tc.want)
			}
		})
	}
}

// TestThroughTheAPI creates a pod on a server configured with other
// seconds.
func TestThroughTheAPI(t *testing.T) {
	env := testenv.Start(t, testenv.WithoutControllers, func(o *daemon.ServerOptions) {
		o.DefaultNotReadyTolerationSeconds = ptr.To[int64](60)
	})
	pod, err := env.Client.CoreV1().Pods("default").Create(context.Background(), &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p"},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []corev1.Toleration{toleration(corev1.TaintNodeNotReady, corev1.TaintEffectNoExecute, ptr.To[int64](60)), unreachable300}
	if !equality.Semantic.DeepEqual(pod.Spec.Tolerations, want) {
		t.Errorf("tolerations %+v, want %+v", pod.Spec.Tolerations, want)
	}
}
