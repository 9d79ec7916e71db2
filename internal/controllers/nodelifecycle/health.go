package nodelifecycle

import (
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Reasons and messages the controller writes into node conditions;
// upstream's for the first two.
const (
	reasonUnknown       = "NodeStatusUnknown"
	msgUnknown          = "Kubelet stopped posting node status."
	reasonNeverUpdated  = "NodeStatusNeverUpdated"
	msgNeverUpdated     = "Kubelet never posted node status."
	reasonLeaseRenewed  = "NodeLeaseRenewed"
	msgLeaseRenewed     = "Node lease renewed; the node is reachable again."
	nodeLeaseNamespace  = corev1.NamespaceNodeLease
	eventNodeNotReady   = "NodeNotReady"
	eventTaintEviction  = "TaintManagerEviction"
	reasonTaintDeletion = "DeletionByTaintManager"
)

// Conditions set to Unknown when a node stops reporting; upstream leaves
// NetworkUnavailable to the network plugin.
var watchedConditions = []corev1.NodeConditionType{corev1.NodeReady, corev1.NodeMemoryPressure, corev1.NodeDiskPressure, corev1.NodePIDPressure}

// health is what the controller has seen of a node's heartbeats, timed by
// its own clock (as upstream, so clock skew between node and controller
// does not matter): probe is when a heartbeat was last seen.
type health struct {
	probe time.Time
	// heartbeat is the Ready condition's lastHeartbeatTime last seen.
	heartbeat metav1.Time
	// renew is the lease's renewTime last seen; renewed is when the
	// controller saw it change (zero until it has).
	renew   *metav1.MicroTime
	renewed time.Time
}

// observe updates h (nil on the first look) with the node's Ready
// heartbeat and lease and returns it with the grace period that applies: a
// node that never posted a Ready condition gets startup from its creation.
func observe(h *health, node *corev1.Node, lease *coordinationv1.Lease, now time.Time, grace, startup time.Duration) (*health, time.Duration) {
	ready := condition(&node.Status, corev1.NodeReady)
	period := grace
	if ready == nil {
		period = startup
	}
	switch {
	case h == nil && ready == nil:
		h = &health{probe: node.CreationTimestamp.Time}
	case h == nil:
		h = &health{probe: now, heartbeat: ready.LastHeartbeatTime}
	case ready != nil && !ready.LastHeartbeatTime.Equal(&h.heartbeat):
		h.heartbeat = ready.LastHeartbeatTime
		h.probe = now
	}
	if lease != nil && lease.Spec.RenewTime != nil {
		switch {
		case h.renew == nil:
			h.renew = lease.Spec.RenewTime.DeepCopy()
			h.probe = later(h.probe, now)
		case h.renew.Before(lease.Spec.RenewTime):
			h.renew = lease.Spec.RenewTime.DeepCopy()
			h.probe = now
			h.renewed = now
		}
	}
	return h, period
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// stale reports whether no heartbeat came within the grace period.
func (h *health) stale(now time.Time, period time.Duration) bool {
	return now.After(h.probe.Add(period))
}

func condition(st *corev1.NodeStatus, t corev1.NodeConditionType) *corev1.NodeCondition {
	for i := range st.Conditions {
		if st.Conditions[i].Type == t {
			return &st.Conditions[i]
		}
	}
	return nil
}

// markUnknown sets the watched conditions of a node that stopped
// reporting to Unknown, as upstream does; it reports whether it changed
// anything.
func markUnknown(node *corev1.Node, now metav1.Time) bool {
	changed := false
	for _, t := range watchedConditions {
		c := condition(&node.Status, t)
		switch {
		case c == nil:
			node.Status.Conditions = append(node.Status.Conditions, corev1.NodeCondition{
				Type: t, Status: corev1.ConditionUnknown, Reason: reasonNeverUpdated, Message: msgNeverUpdated,
				LastHeartbeatTime: node.CreationTimestamp, LastTransitionTime: now,
			})
			changed = true
		case c.Status != corev1.ConditionUnknown:
			c.Status, c.Reason, c.Message, c.LastTransitionTime = corev1.ConditionUnknown, reasonUnknown, msgUnknown, now
			changed = true
		}
	}
	return changed
}

// markReachable turns a Ready=Unknown this controller wrote back to True
// once the node's lease is renewed after it: the lease is the node agent's
// heartbeat, and the agent corrects Ready when it next posts its status. It
// reports whether it changed anything.
func markReachable(node *corev1.Node, h *health, now metav1.Time) bool {
	c := condition(&node.Status, corev1.NodeReady)
	if c == nil || c.Status != corev1.ConditionUnknown || (c.Reason != reasonUnknown && c.Reason != reasonNeverUpdated) {
		return false
	}
	if h.renewed.IsZero() || h.renewed.Before(c.LastTransitionTime.Time) {
		return false
	}
	c.Status, c.Reason, c.Message, c.LastTransitionTime = corev1.ConditionTrue, reasonLeaseRenewed, msgLeaseRenewed, now
	return true
}
