// Package defaulttolerations is the DefaultTolerationSeconds admission
// plugin, as upstream's (plugin/pkg/admission/defaulttolerationseconds):
// a pod that does not tolerate the node.kubernetes.io/not-ready and
// node.kubernetes.io/unreachable NoExecute taints gets tolerations for
// them with tolerationSeconds (300 by default), so the node lifecycle
// controller evicts it that long after its node fails.
//
// It reads nothing from the cluster. Only the daemon wires it; tests may
// import it.
package defaulttolerations

import (
	"context"

	corev1 "k8s.io/api/core/v1"

	"skiff.dev/skiff/internal/apiserver"
)

// DefaultSeconds is upstream's default for both tolerations.
const DefaultSeconds int64 = 300

// Options set the tolerations' seconds; nil means DefaultSeconds.
type Options struct {
	NotReadySeconds    *int64
	UnreachableSeconds *int64
}

// Plugin is the DefaultTolerationSeconds admission plugin.
type Plugin struct {
	notReady, unreachable corev1.Toleration
}

var _ apiserver.Mutator = (*Plugin)(nil)

// New returns the plugin.
func New(opts Options) *Plugin {
	seconds := func(p *int64) *int64 {
		v := DefaultSeconds
		if p != nil {
			v = *p
		}
		return &v
	}
	return &Plugin{
		notReady: corev1.Toleration{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists,
			Effect: corev1.TaintEffectNoExecute, TolerationSeconds: seconds(opts.NotReadySeconds)},
		unreachable: corev1.Toleration{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists,
			Effect: corev1.TaintEffectNoExecute, TolerationSeconds: seconds(opts.UnreachableSeconds)},
	}
}

// Admit adds the missing tolerations to pods on create and update.
func (p *Plugin) Admit(_ context.Context, a *apiserver.Attributes) error {
	if a.Subresource != "" || a.Kind.Group != "" || a.Kind.Kind != "Pod" {
		return nil
	}
	pod, ok := a.Object.(*corev1.Pod)
	if !ok {
		return nil
	}
	p.Apply(pod)
	return nil
}

// Apply adds the tolerations pod lacks.
func (p *Plugin) Apply(pod *corev1.Pod) {
	notReady, unreachable := false, false
	for _, t := range pod.Spec.Tolerations {
		noExecute := t.Effect == corev1.TaintEffectNoExecute || t.Effect == ""
		if (t.Key == corev1.TaintNodeNotReady || t.Key == "") && noExecute {
			notReady = true
		}
		if (t.Key == corev1.TaintNodeUnreachable || t.Key == "") && noExecute {
			unreachable = true
		}
	}
	if !notReady {
		pod.Spec.Tolerations = append(pod.Spec.Tolerations, *p.notReady.DeepCopy())
	}
	if !unreachable {
		pod.Spec.Tolerations = append(pod.Spec.Tolerations, *p.unreachable.DeepCopy())
	}
}
