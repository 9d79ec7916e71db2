package servicelb

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"
)

// Event reasons.
const (
	ReasonAllocated = "IPAllocated"
	ReasonFailed    = "AllocationFailed"
)

// sync gives the Service key its address, or takes it back.
func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, _ := strings.Cut(key, "/")
	svc, err := c.services.Services(ns).Get(name)
	if apierrors.IsNotFound(err) {
		c.forget(key)
		return nil
	}
	if err != nil {
		return err
	}
	if !handles(svc) {
		c.forget(key)
		if svc.Spec.Type != corev1.ServiceTypeLoadBalancer && len(svc.Status.LoadBalancer.Ingress) > 0 {
			return c.setIngress(ctx, svc, nil)
		}
		return nil
	}
	if c.pool != nil {
		return c.syncPool(ctx, svc, key)
	}
	return c.syncNodes(ctx, svc, key)
}

// forget releases what key held; Services that waited get another look.
func (c *Controller) forget(key string) {
	if c.pool == nil {
		// On the nodes' addresses its ports come free.
		c.mu.Lock()
		served := c.onNodes[key]
		delete(c.onNodes, key)
		c.mu.Unlock()
		if served {
			c.enqueueAll()
		}
		return
	}
	for _, w := range c.alloc.release(key) {
		c.loop.Add(w)
	}
}

func (c *Controller) syncPool(ctx context.Context, svc *corev1.Service, key string) error {
	v4 := primaryIPv4(svc)
	before, had := c.alloc.holding(key)
	req, err := requestedIP(svc, v4)
	var ip netip.Addr
	switch {
	case err != nil:
		return c.fail(ctx, svc, key, err.Error())
	case req.IsValid():
		if !c.pool.Contains(req) {
			return c.fail(ctx, svc, key, fmt.Sprintf("requested IP %s is not in the address pool", req))
		}
		if holder, ok := c.alloc.claim(key, req); !ok {
			return c.fail(ctx, svc, key, fmt.Sprintf("requested IP %s is in use by %s", req, holder))
		}
		ip = req
	default:
		// What the status shows, when nobody else has it (a restart that
		// missed it, or an address written by an earlier run).
		if _, ok := c.alloc.holding(key); !ok {
			for _, ing := range svc.Status.LoadBalancer.Ingress {
				if a, ok := parseIP(ing.IP); ok && a.Is4() == v4 {
					if _, ok := c.alloc.claim(key, a); ok {
						break
					}
				}
			}
		}
		var ok bool
		if ip, ok = c.alloc.next(key, v4); !ok {
			return c.fail(ctx, svc, key, "no available IPs in the address pool")
		}
	}
	if had && before != ip {
		for _, w := range c.alloc.waiters() {
			c.loop.Add(w)
		}
	}
	return c.assign(ctx, svc, []netip.Addr{ip})
}

func (c *Controller) syncNodes(ctx context.Context, svc *corev1.Service, key string) error {
	if other, port := c.portTaken(svc); other != "" {
		return c.fail(ctx, svc, key, fmt.Sprintf("port %s is already used on the nodes' addresses by %s", port, other))
	}
	v4 := primaryIPv4(svc)
	nodes, err := c.nodes.List(labels.Everything())
	if err != nil {
		return err
	}
	slices.SortFunc(nodes, func(a, b *corev1.Node) int { return strings.Compare(a.Name, b.Name) })
	var ips []netip.Addr
	for _, n := range nodes {
		if !nodeReady(n) || excluded(n) {
			continue
		}
		for _, a := range n.Status.Addresses {
			if ip, ok := parseIP(a.Address); ok && a.Type == corev1.NodeInternalIP && ip.Is4() == v4 && !slices.Contains(ips, ip) {
				ips = append(ips, ip)
			}
		}
	}
	if len(ips) == 0 {
		return c.fail(ctx, svc, key, "no Ready node has an address of the Service's IP family")
	}
	c.mu.Lock()
	c.onNodes[key] = true
	c.mu.Unlock()
	return c.assign(ctx, svc, ips)
}

// portTaken finds an older LoadBalancer on the nodes' addresses using one
// of svc's ports.
func (c *Controller) portTaken(svc *corev1.Service) (other, port string) {
	all, _ := c.services.List(labels.Everything())
	slices.SortFunc(all, olderFirst)
	for _, o := range all {
		if o.Namespace == svc.Namespace && o.Name == svc.Name {
			return "", ""
		}
		if !handles(o) {
			continue
		}
		for _, p := range svc.Spec.Ports {
			for _, q := range o.Spec.Ports {
				if p.Port == q.Port && protocol(p.Protocol) == protocol(q.Protocol) {
					return o.Namespace + "/" + o.Name, fmt.Sprintf("%d/%s", p.Port, protocol(p.Protocol))
				}
			}
		}
	}
	return "", ""
}

func protocol(p corev1.Protocol) corev1.Protocol {
	if p == "" {
		return corev1.ProtocolTCP
	}
	return p
}

// assign writes the addresses to the Service's status.
func (c *Controller) assign(ctx context.Context, svc *corev1.Service, ips []netip.Addr) error {
	want := make([]corev1.LoadBalancerIngress, len(ips))
	strs := make([]string, len(ips))
	for i, ip := range ips {
		want[i] = corev1.LoadBalancerIngress{IP: ip.String(), IPMode: ptr.To(corev1.LoadBalancerIPModeVIP)}
		strs[i] = ip.String()
	}
	if ingressEqual(svc.Status.LoadBalancer.Ingress, want) {
		return nil
	}
	if err := c.setIngress(ctx, svc, want); err != nil {
		return err
	}
	c.recorder.Eventf(svc, corev1.EventTypeNormal, ReasonAllocated, "Assigned IP %s", strings.Join(strs, ","))
	c.log.Info("assigned", "service", svc.Namespace+"/"+svc.Name, "ips", strs)
	return nil
}

// fail records why svc has no address, takes away the one its status may
// show, and waits for an address to come free.
func (c *Controller) fail(ctx context.Context, svc *corev1.Service, key, why string) error {
	if c.pool == nil {
		c.forget(key)
	} else {
		for _, w := range c.alloc.release(key) {
			if w != key {
				c.loop.Add(w)
			}
		}
		c.alloc.wait(key)
	}
	c.recorder.Eventf(svc, corev1.EventTypeWarning, ReasonFailed, "Failed to allocate IP for %q: %s", svc.Namespace+"/"+svc.Name, why)
	if len(svc.Status.LoadBalancer.Ingress) > 0 {
		return c.setIngress(ctx, svc, nil)
	}
	return nil
}

func (c *Controller) setIngress(ctx context.Context, svc *corev1.Service, ing []corev1.LoadBalancerIngress) error {
	up := svc.DeepCopy()
	up.Status.LoadBalancer.Ingress = ing
	_, err := c.client.CoreV1().Services(svc.Namespace).UpdateStatus(ctx, up, metav1.UpdateOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("update status of service %s/%s: %w", svc.Namespace, svc.Name, err)
	}
	return nil
}

func ingressEqual(a, b []corev1.LoadBalancerIngress) bool {
	return slices.EqualFunc(a, b, func(x, y corev1.LoadBalancerIngress) bool {
		return x.IP == y.IP && x.Hostname == "" && len(x.Ports) == 0 && ptr.Equal(x.IPMode, y.IPMode)
	})
}

// primaryIPv4 says whether the Service's first IP family is IPv4 (the
// default).
func primaryIPv4(svc *corev1.Service) bool {
	return len(svc.Spec.IPFamilies) == 0 || svc.Spec.IPFamilies[0] != corev1.IPv6Protocol
}

// requestedIP is the address of the family the Service asks for, if any:
// the annotation first, then spec.loadBalancerIP.
func requestedIP(svc *corev1.Service, v4 bool) (netip.Addr, error) {
	for _, a := range []string{AnnotationLoadBalancerIPs, deprecatedAnnotationLoadBalancerIPs} {
		list, ok := svc.Annotations[a]
		if !ok {
			continue
		}
		for _, s := range strings.Split(list, ",") {
			ip, ok := parseIP(strings.TrimSpace(s))
			if !ok {
				return netip.Addr{}, fmt.Errorf("annotation %s: %q is not an IP address", a, s)
			}
			if ip.Is4() == v4 {
				return ip, nil
			}
		}
		return netip.Addr{}, fmt.Errorf("annotation %s names no address of the Service's IP family", a)
	}
	if s := svc.Spec.LoadBalancerIP; s != "" {
		ip, ok := parseIP(s)
		if !ok {
			return netip.Addr{}, fmt.Errorf("spec.loadBalancerIP %q is not an IP address", s)
		}
		return ip, nil
	}
	return netip.Addr{}, nil
}

func parseIP(s string) (netip.Addr, bool) {
	ip, err := netip.ParseAddr(s)
	if err != nil || ip.Zone() != "" {
		return netip.Addr{}, false
	}
	return ip.Unmap(), true
}
