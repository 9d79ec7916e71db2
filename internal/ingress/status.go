package ingress

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// writeStatus sets status.loadBalancer.ingress of the Ingresses served
// where it differs.
func (c *Controller) writeStatus(ctx context.Context, ours []*networkingv1.Ingress) error {
	want, err := c.statusAddresses()
	if err != nil || len(want) == 0 {
		return err // nothing known yet: leave status alone
	}
	var errs []error
	for _, ing := range ours {
		if slices.EqualFunc(ing.Status.LoadBalancer.Ingress, want, sameLBIngress) {
			continue
		}
		cp := ing.DeepCopy()
		cp.Status.LoadBalancer.Ingress = want
		_, err := c.client.NetworkingV1().Ingresses(ing.Namespace).UpdateStatus(ctx, cp, metav1.UpdateOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("ingress %s/%s status: %w", ing.Namespace, ing.Name, err))
		}
	}
	return errors.Join(errs...)
}

func sameLBIngress(a, b networkingv1.IngressLoadBalancerIngress) bool {
	return a.IP == b.IP && a.Hostname == b.Hostname && len(a.Ports) == 0 && len(b.Ports) == 0
}

// statusAddresses are Options.StatusAddresses, or else the addresses of
// the ready Nodes, sorted.
func (c *Controller) statusAddresses() ([]networkingv1.IngressLoadBalancerIngress, error) {
	addrs := c.opts.StatusAddresses
	if len(addrs) == 0 && c.nodes != nil {
		nodes, err := c.nodes.List(labels.Everything())
		if err != nil {
			return nil, err
		}
		for _, n := range nodes {
			if nodeReady(n) {
				addrs = append(addrs, nodeAddresses(n)...)
			}
		}
	}
	seen := map[string]bool{}
	var out []networkingv1.IngressLoadBalancerIngress
	for _, a := range addrs {
		if a == "" || seen[a] {
			continue
		}
		seen[a] = true
		if net.ParseIP(a) != nil {
			out = append(out, networkingv1.IngressLoadBalancerIngress{IP: a})
		} else {
			out = append(out, networkingv1.IngressLoadBalancerIngress{Hostname: a})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].IP != out[j].IP {
			return out[i].IP < out[j].IP
		}
		return out[i].Hostname < out[j].Hostname
	})
	return out, nil
}

// nodeAddresses are a Node's external IPs, or its internal IPs when it
// has none.
func nodeAddresses(n *corev1.Node) []string {
	var ext, internal []string
	for _, a := range n.Status.Addresses {
		switch a.Type {
		case corev1.NodeExternalIP:
			ext = append(ext, a.Address)
		case corev1.NodeInternalIP:
			internal = append(internal, a.Address)
		}
	}
	if len(ext) > 0 {
		return ext
	}
	return internal
}

// nodeReady: the Ready condition is True (a node without conditions yet
// counts as ready).
func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return true
}

func sameStrings(a, b []string) bool { return slices.Equal(a, b) }
