package agent

import (
	"context"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// renewLease keeps the node's Lease in kube-node-lease fresh: the node's
// heartbeat, renewed every LeaseRenewInterval (first at once).
func (a *Agent) renewLease(ctx context.Context) {
	t := a.clock.NewTicker(a.opts.LeaseRenewInterval)
	defer t.Stop()
	for {
		if err := a.renewLeaseOnce(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("renewing the node lease", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
	}
}

func (a *Agent) renewLeaseOnce(ctx context.Context) error {
	leases := a.client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	now := metav1.NewMicroTime(a.clock.Now())
	holder := a.opts.NodeName
	secs := int32(a.opts.LeaseDuration.Seconds())
	cur, err := leases.Get(ctx, a.opts.NodeName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		l := &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: a.opts.NodeName, Namespace: corev1.NamespaceNodeLease},
			Spec: coordinationv1.LeaseSpec{
				HolderIdentity:       &holder,
				LeaseDurationSeconds: &secs,
				RenewTime:            &now,
			},
		}
		a.setLeaseOwner(&l.ObjectMeta)
		_, err = leases.Create(ctx, l, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	cur.Spec.HolderIdentity = &holder
	cur.Spec.LeaseDurationSeconds = &secs
	cur.Spec.RenewTime = &now
	a.setLeaseOwner(&cur.ObjectMeta)
	_, err = leases.Update(ctx, cur, metav1.UpdateOptions{})
	return err
}

// setLeaseOwner makes the Node own its Lease, so that deleting the Node
// deletes the Lease.
func (a *Agent) setLeaseOwner(m *metav1.ObjectMeta) {
	if a.node == nil || a.node.uid == "" {
		return
	}
	for _, r := range m.OwnerReferences {
		if r.UID == a.node.uid {
			return
		}
	}
	m.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: a.opts.NodeName, UID: a.node.uid}}
}
