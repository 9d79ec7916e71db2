package daemonset

import (
	"testing"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

func TestPlaceOn(t *testing.T) {
	node := func(labels map[string]string, taints ...corev1.Taint) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: labels}, Spec: corev1.NodeSpec{Taints: taints}}
	}
	taint := func(key string, effect corev1.TaintEffect) corev1.Taint {
		return corev1.Taint{Key: key, Value: "x", Effect: effect}
	}
	gpuAffinity := &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "gpu", Operator: corev1.NodeSelectorOpExists}}}},
	}}}
	cases := []struct {
		name        string
		spec        corev1.PodSpec
		node        *corev1.Node
		run, remain bool
	}{
		{"plain node", corev1.PodSpec{}, node(nil), true, true},
		{"nodeSelector matches", corev1.PodSpec{NodeSelector: map[string]string{"role": "w"}}, node(map[string]string{"role": "w"}), true, true},
		{"nodeSelector does not match", corev1.PodSpec{NodeSelector: map[string]string{"role": "w"}}, node(map[string]string{"role": "db"}), false, false},
		{"required affinity matches", corev1.PodSpec{Affinity: gpuAffinity}, node(map[string]string{"gpu": "1"}), true, true},
		{"required affinity does not match", corev1.PodSpec{Affinity: gpuAffinity}, node(nil), false, false},
		{"another nodeName", corev1.PodSpec{NodeName: "n2"}, node(nil), false, false},
		{"untolerated NoSchedule: no new pod, the old one stays", corev1.PodSpec{}, node(nil, taint("dedicated", corev1.TaintEffectNoSchedule)), false, true},
		{"untolerated NoExecute", corev1.PodSpec{}, node(nil, taint("evict", corev1.TaintEffectNoExecute)), false, false},
		{"PreferNoSchedule is ignored", corev1.PodSpec{}, node(nil, taint("soft", corev1.TaintEffectPreferNoSchedule)), true, true},
		{"tolerated NoSchedule", corev1.PodSpec{Tolerations: []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpEqual, Value: "x"}}},
			node(nil, taint("dedicated", corev1.TaintEffectNoSchedule)), true, true},
		{"a not-ready node", corev1.PodSpec{}, node(nil, taint(TaintNodeNotReady, corev1.TaintEffectNoExecute)), true, true},
		{"an unreachable node", corev1.PodSpec{}, node(nil, taint(TaintNodeUnreachable, corev1.TaintEffectNoExecute)), true, true},
		{"a cordoned node", corev1.PodSpec{}, node(nil, taint(TaintNodeUnschedulable, corev1.TaintEffectNoSchedule)), true, true},
		{"memory pressure", corev1.PodSpec{}, node(nil, taint(TaintNodeMemoryPressure, corev1.TaintEffectNoSchedule)), true, true},
		{"no pod network, pod network pod", corev1.PodSpec{}, node(nil, taint(TaintNodeNetworkUnavailable, corev1.TaintEffectNoSchedule)), false, true},
		{"no pod network, host network pod", corev1.PodSpec{HostNetwork: true}, node(nil, taint(TaintNodeNetworkUnavailable, corev1.TaintEffectNoSchedule)), true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ds := &appsv1.DaemonSet{Spec: appsv1.DaemonSetSpec{Template: corev1.PodTemplateSpec{Spec: tc.spec}}}
			got := placeOn(ds, tc.node, logr.Discard())
			if got.shouldRun != tc.run || got.shouldContinue != tc.remain {
				t.Errorf("got run=%v remain=%v, want run=%v remain=%v", got.shouldRun, got.shouldContinue, tc.run, tc.remain)
			}
			if len(ds.Spec.Template.Spec.Tolerations) != len(tc.spec.Tolerations) {
				t.Error("placeOn changed the template")
			}
		})
	}
}

func TestLimits(t *testing.T) {
	cases := []struct {
		name                       string
		surge, unavailable         *intstr.IntOrString
		desired                    int
		wantSurge, wantUnavailable int
	}{
		{"defaults", nil, nil, 10, 0, 1},
		{"percent rounds up", ptr.To(intstr.FromString("0%")), ptr.To(intstr.FromString("25%")), 10, 0, 3},
		{"surge", ptr.To(intstr.FromString("10%")), ptr.To(intstr.FromInt32(0)), 10, 1, 0},
		{"both zero means one unavailable", ptr.To(intstr.FromInt32(0)), ptr.To(intstr.FromString("0%")), 10, 0, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := &reconciler{ds: &appsv1.DaemonSet{Spec: appsv1.DaemonSetSpec{UpdateStrategy: appsv1.DaemonSetUpdateStrategy{
				Type: appsv1.RollingUpdateDaemonSetStrategyType, RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxSurge: tc.surge, MaxUnavailable: tc.unavailable},
			}}}}
			s, u := r.limits(tc.desired)
			if s != tc.wantSurge || u != tc.wantUnavailable {
				t.Errorf("got surge %d unavailable %d, want %d %d", s, u, tc.wantSurge, tc.wantUnavailable)
			}
		})
	}
}
