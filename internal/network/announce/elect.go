package announce

import (
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// owner is the node that announces svc's addresses: the first by name of
// the eligible ones — Ready, not labelled
// node.kubernetes.io/exclude-from-external-load-balancers, and for
// externalTrafficPolicy Local holding a serving endpoint of the Service
// (traffic to other nodes would be dropped). Every node computes the same
// answer from the same objects, so exactly one announces; "" when none
// may.
func owner(svc *corev1.Service, nodes []*corev1.Node, slices []*discoveryv1.EndpointSlice) string {
	var local map[string]bool
	if svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal {
		local = nodesWithEndpoints(slices)
	}
	best := ""
	for _, n := range nodes {
		if !ready(n) || excluded(n) || (local != nil && !local[n.Name]) {
			continue
		}
		if best == "" || strings.Compare(n.Name, best) < 0 {
			best = n.Name
		}
	}
	return best
}

// nodesWithEndpoints are the nodes holding a serving endpoint.
func nodesWithEndpoints(list []*discoveryv1.EndpointSlice) map[string]bool {
	out := map[string]bool{}
	for _, s := range list {
		for _, e := range s.Endpoints {
			if e.NodeName == nil {
				continue
			}
			c := e.Conditions
			if (c.Ready == nil || *c.Ready) || (c.Serving != nil && *c.Serving) {
				out[*e.NodeName] = true
			}
		}
	}
	return out
}

func ready(n *corev1.Node) bool {
	i := slices.IndexFunc(n.Status.Conditions, func(c corev1.NodeCondition) bool { return c.Type == corev1.NodeReady })
	return i >= 0 && n.Status.Conditions[i].Status == corev1.ConditionTrue
}

func excluded(n *corev1.Node) bool {
	_, ok := n.Labels[corev1.LabelNodeExcludeBalancers]
	return ok
}
