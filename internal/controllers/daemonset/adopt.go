package daemonset

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"skiff.dev/skiff/internal/controllers/podcontrol"
)

// claimPods returns the pods set controls, as upstream's ControllerRefManager
// does: pods it owns that still match its selector, plus orphans that
// match, which it adopts (after re-reading the set from the API server);
// pods it owns that no longer match are released.
func (c *Controller) claimPods(ctx context.Context, set *appsv1.DaemonSet, selector labels.Selector) ([]*corev1.Pod, error) {
	all, err := c.pods.Pods(set.Namespace).List(labels.Everything())
	if err != nil {
		return nil, fmt.Errorf("list pods: %w", err)
	}
	m := &podcontrol.RefManager{
		Owner:    set,
		Kind:     controllerKind,
		Selector: selector,
		CanAdopt: podcontrol.RecheckDeletion(set, func(ctx context.Context) (metav1.Object, error) {
			return c.client.AppsV1().DaemonSets(set.Namespace).Get(ctx, set.Name, metav1.GetOptions{})
		}),
	}
	return m.ClaimPods(ctx, c.client, all)
}
