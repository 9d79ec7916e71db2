package apiserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"skiff.dev/skiff/internal/store"
)

// serviceAlloc gives Services their cluster IPs (from the service CIDR)
// and node ports (from the node port range), as upstream's Service
// registry does, on a single-stack cluster.
type serviceAlloc struct {
	cidr   netip.Prefix
	family corev1.IPFamily
	ipr    ipRange
	ips    *allocRange
	pr     PortRange
	ports  *allocRange
	log    *slog.Logger
}

var serviceGK = corev1.SchemeGroupVersion.WithKind("Service").GroupKind()

func newServiceAlloc(cidr netip.Prefix, pr PortRange, st store.Interface, now func() time.Time, log *slog.Logger) (*serviceAlloc, error) {
	if !cidr.IsValid() {
		cidr = DefaultServiceCIDR
	}
	if pr.Size == 0 {
		pr = DefaultNodePortRange
	}
	if pr.Base < 1 || pr.Base+pr.Size-1 > 65535 {
		return nil, fmt.Errorf("node port range %v is not valid", pr)
	}
	ipr, err := newIPRange(cidr)
	if err != nil {
		return nil, err
	}
	ipKind, err := newKind(ipAddressResource, nil)
	if err != nil {
		return nil, err
	}
	family := corev1.IPv4Protocol
	if cidr.Addr().Is6() {
		family = corev1.IPv6Protocol
	}
	a := &serviceAlloc{cidr: ipr.prefix, family: family, ipr: ipr, pr: pr, log: log}
	a.ips = &allocRange{
		st: st, prefix: ipKind.prefix, size: ipr.size, now: now,
		static: staticBand(ipr.size, 16, 16, 256),
		codec:  ipAddressCodec{kind: ipKind, family: string(family)},
		name:   func(off uint64) string { return ipr.addr(off).String() },
		offset: func(name string) (uint64, bool) {
			addr, err := netip.ParseAddr(name)
			if err != nil {
				return 0, false
			}
			return ipr.offset(addr)
		},
	}
	a.ports = &allocRange{
		st: st, prefix: nodePortPrefix, size: uint64(pr.Size), now: now,
		static: staticBand(uint64(pr.Size), 16, 32, 128),
		codec:  nodePortCodec{},
		name:   func(off uint64) string { return strconv.Itoa(pr.Base + int(off)) },
		offset: func(name string) (uint64, bool) {
			p, err := strconv.Atoi(name)
			if err != nil || !pr.Contains(p) {
				return 0, false
			}
			return uint64(p - pr.Base), true
		},
	}
	return a, nil
}

// held is a record this write created: its value and revision.
type held struct {
	r   *allocRange
	off uint64
	rev int64
}

// allocTxn is what one Service write allocated, and what it frees once
// the write is committed. A nil *allocTxn does nothing.
type allocTxn struct {
	owner   owner
	dryRun  bool
	created []held
	// freed are values the Service gives up; their records go once the
	// write is stored.
	freed []held
}

// cleanupTimeout bounds the record writes that follow a request, which
// run even when the request's context has ended.
const cleanupTimeout = 10 * time.Second

// revert deletes the records this write created: the write failed.
func (t *allocTxn) revert(ctx context.Context, log *slog.Logger) {
	if t == nil || t.dryRun {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	for _, h := range t.created {
		if err := h.r.delete(ctx, h.off, h.rev); err != nil {
			log.Warn("releasing an allocation after a failed write", "service", t.owner.String(), "value", h.r.name(h.off), "err", err)
		}
	}
	t.created = nil
}

// commit frees what the stored write gave up.
func (t *allocTxn) commit(ctx context.Context, log *slog.Logger) {
	if t == nil || t.dryRun {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	for _, h := range t.freed {
		if err := h.r.release(ctx, h.off, t.owner); err != nil {
			log.Warn("releasing an allocation", "service", t.owner.String(), "value", h.r.name(h.off), "err", err)
		}
	}
	t.freed = nil
}

// allocateCreate fills in a new Service's cluster IPs, IP families and
// node ports, recording them unless dryRun.
func (a *serviceAlloc) allocateCreate(ctx context.Context, svc *corev1.Service, dryRun bool) (*allocTxn, error) {
	t := &allocTxn{owner: owner{svc.Namespace, svc.Name}, dryRun: dryRun}
	if err := a.initIPFamilies(svc, nil); err != nil {
		return nil, err
	}
	err := a.allocClusterIPs(ctx, t, svc)
	if err == nil {
		err = a.allocNodePorts(ctx, t, svc, nil)
	}
	if err == nil && needsHealthCheck(svc) {
		err = a.allocHealthCheck(ctx, t, svc)
	}
	if err != nil {
		t.revert(ctx, a.log)
		return nil, err
	}
	return t, nil
}

// allocateUpdate allocates what an update adds (a type change to a kind
// of Service that needs cluster IPs, node ports or a health check port)
// and lists what it gives up.
func (a *serviceAlloc) allocateUpdate(ctx context.Context, svc, old *corev1.Service, dryRun bool) (*allocTxn, error) {
	t := &allocTxn{owner: owner{svc.Namespace, svc.Name}, dryRun: dryRun}
	if err := a.initIPFamilies(svc, old); err != nil {
		return nil, err
	}
	err := a.updateClusterIPs(ctx, t, svc, old)
	if err == nil {
		err = a.updateNodePorts(ctx, t, svc, old)
	}
	if err == nil {
		err = a.updateHealthCheck(ctx, t, svc, old)
	}
	if err != nil {
		t.revert(ctx, a.log)
		return nil, err
	}
	return t, nil
}

// releaseAll frees everything a deleted Service held.
func (a *serviceAlloc) releaseAll(ctx context.Context, svc *corev1.Service) {
	t := &allocTxn{owner: owner{svc.Namespace, svc.Name}}
	a.freeClusterIPs(t, svc)
	for _, p := range serviceNodePorts(svc) {
		a.freePort(t, p)
	}
	t.commit(ctx, a.log)
}

// initIPFamilies sets ipFamilyPolicy and ipFamilies as upstream does on a
// single-stack cluster and refuses families the cluster does not have.
func (a *serviceAlloc) initIPFamilies(svc, old *corev1.Service) error {
	spec := &svc.Spec
	if spec.Type == corev1.ServiceTypeExternalName {
		return nil
	}
	if spec.IPFamilyPolicy == nil {
		policy := corev1.IPFamilyPolicySingleStack
		switch {
		case old != nil && old.Spec.IPFamilyPolicy != nil:
			policy = *old.Spec.IPFamilyPolicy
		case spec.ClusterIP == corev1.ClusterIPNone && len(spec.Selector) == 0:
			policy = corev1.IPFamilyPolicyRequireDualStack
		}
		spec.IPFamilyPolicy = &policy
	}
	var errs field.ErrorList
	for i, ip := range spec.ClusterIPs {
		if ip == corev1.ClusterIPNone {
			break
		}
		if i < len(spec.IPFamilies) {
			continue
		}
		fam := familyOf(ip)
		if fam != a.family {
			errs = append(errs, field.Invalid(field.NewPath("spec", "clusterIPs").Index(i), spec.ClusterIPs,
				fmt.Sprintf("%s is not configured on this cluster", fam)))
			continue
		}
		spec.IPFamilies = append(spec.IPFamilies, fam)
	}
	if len(errs) > 0 {
		return apierrors.NewInvalid(serviceGK, svc.Name, errs)
	}
	// Headless and selectorless: any families go, and a dual-stack policy
	// lists both even on a single-stack cluster, as upstream.
	if spec.ClusterIP == corev1.ClusterIPNone && len(spec.Selector) == 0 {
		if len(spec.IPFamilies) == 0 {
			spec.IPFamilies = []corev1.IPFamily{a.family}
		}
		if len(spec.IPFamilies) < 2 && *spec.IPFamilyPolicy != corev1.IPFamilyPolicySingleStack {
			spec.IPFamilies = append(spec.IPFamilies, otherFamily(spec.IPFamilies[0]))
		}
		return nil
	}
	if *spec.IPFamilyPolicy == corev1.IPFamilyPolicyRequireDualStack {
		errs = append(errs, field.Invalid(field.NewPath("spec", "ipFamilyPolicy"), spec.IPFamilyPolicy,
			"this cluster is not configured for dual-stack services"))
	}
	for i, fam := range spec.IPFamilies {
		if fam != a.family {
			errs = append(errs, field.Invalid(field.NewPath("spec", "ipFamilies").Index(i), fam, "not configured on this cluster"))
		}
	}
	if len(errs) > 0 {
		return apierrors.NewInvalid(serviceGK, svc.Name, errs)
	}
	if len(spec.IPFamilies) == 0 {
		spec.IPFamilies = []corev1.IPFamily{a.family}
	}
	return nil
}

func familyOf(ip string) corev1.IPFamily {
	if addr, err := netip.ParseAddr(ip); err == nil && addr.Is6() && !addr.Is4In6() {
		return corev1.IPv6Protocol
	}
	return corev1.IPv4Protocol
}

func otherFamily(f corev1.IPFamily) corev1.IPFamily {
	if f == corev1.IPv4Protocol {
		return corev1.IPv6Protocol
	}
	return corev1.IPv4Protocol
}

// needsClusterIP: every type but ExternalName has cluster IPs (or None).
func needsClusterIP(svc *corev1.Service) bool {
	return svc.Spec.Type != corev1.ServiceTypeExternalName
}

func needsNodePort(svc *corev1.Service) bool {
	return svc.Spec.Type == corev1.ServiceTypeNodePort || svc.Spec.Type == corev1.ServiceTypeLoadBalancer
}

func needsHealthCheck(svc *corev1.Service) bool {
	return svc.Spec.Type == corev1.ServiceTypeLoadBalancer && svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
}

// shouldAllocateNodePorts: LoadBalancers may opt out of node ports.
func shouldAllocateNodePorts(svc *corev1.Service) bool {
	if svc.Spec.Type == corev1.ServiceTypeNodePort {
		return true
	}
	return svc.Spec.Type == corev1.ServiceTypeLoadBalancer &&
		(svc.Spec.AllocateLoadBalancerNodePorts == nil || *svc.Spec.AllocateLoadBalancerNodePorts)
}

func isHeadless(svc *corev1.Service) bool {
	return svc.Spec.ClusterIP == corev1.ClusterIPNone || (len(svc.Spec.ClusterIPs) > 0 && svc.Spec.ClusterIPs[0] == corev1.ClusterIPNone)
}

// allocClusterIPs gives a Service its cluster IP: the one it asks for if
// that is in range and free, else a free one. Headless and ExternalName
// Services get none.
func (a *serviceAlloc) allocClusterIPs(ctx context.Context, t *allocTxn, svc *corev1.Service) error {
	if !needsClusterIP(svc) || isHeadless(svc) {
		return nil
	}
	spec := &svc.Spec
	if len(spec.ClusterIPs) == 0 && spec.ClusterIP != "" {
		spec.ClusterIPs = []string{spec.ClusterIP}
	}
	want := ""
	if len(spec.ClusterIPs) > 0 {
		want = spec.ClusterIPs[0]
	}
	ip, err := a.allocIP(ctx, t, want)
	if err != nil {
		if errors.Is(err, errRangeFull) {
			return apierrors.NewInternalError(fmt.Errorf("failed to allocate a serviceIP: %v", err))
		}
		if msg, ok := requestError(err); ok {
			return apierrors.NewInvalid(serviceGK, svc.Name, field.ErrorList{field.Invalid(field.NewPath("spec", "clusterIPs"), spec.ClusterIPs,
				fmt.Sprintf("failed to allocate IP %v: %v", want, msg))})
		}
		return apierrors.NewInternalError(fmt.Errorf("failed to allocate a serviceIP: %w", err))
	}
	spec.ClusterIP = ip
	if len(spec.ClusterIPs) == 0 {
		spec.ClusterIPs = []string{ip}
	} else {
		spec.ClusterIPs[0] = ip
	}
	return nil
}

// errNotInRange reports a requested value outside the range; its text is
// upstream's.
type errNotInRange struct{ msg string }

func (e *errNotInRange) Error() string { return e.msg }

// requestError returns the message for an error about a requested value.
func requestError(err error) (string, bool) {
	var nr *errNotInRange
	switch {
	case errors.As(err, &nr):
		return nr.msg, true
	case errors.Is(err, errAllocated):
		return "", true
	}
	return "", false
}

// allocIP records want (or, when empty, any free address) for t's
// Service and returns the address.
func (a *serviceAlloc) allocIP(ctx context.Context, t *allocTxn, want string) (string, error) {
	if want == "" {
		if t.dryRun {
			off, err := a.ips.pickFree(ctx)
			if err != nil {
				return "", err
			}
			return a.ips.name(off), nil
		}
		off, rev, err := a.ips.allocateNext(ctx, t.owner)
		if err != nil {
			return "", err
		}
		t.created = append(t.created, held{a.ips, off, rev})
		return a.ips.name(off), nil
	}
	addr, err := netip.ParseAddr(want)
	if err != nil {
		return "", &errNotInRange{fmt.Sprintf("%q is not an IP address", want)}
	}
	off, ok := a.ipr.offset(addr)
	if !ok {
		return "", &errNotInRange{"provided IP is not in the valid range. The range of valid IPs is " + a.cidr.String()}
	}
	if err := a.take(ctx, t, a.ips, off); err != nil {
		if errors.Is(err, errAllocated) {
			return "", &errNotInRange{"provided IP is already allocated"}
		}
		return "", err
	}
	return a.ips.name(off), nil
}

// take records off for t's Service (or, in a dry run, checks it is free).
func (a *serviceAlloc) take(ctx context.Context, t *allocTxn, r *allocRange, off uint64) error {
	if t.dryRun {
		rec, err := r.get(ctx, off)
		if err == nil && rec != nil {
			err = errAllocated
		}
		return err
	}
	rev, err := r.allocate(ctx, off, t.owner)
	if err != nil {
		return err
	}
	t.created = append(t.created, held{r, off, rev})
	return nil
}

// allocPort records port (or, when 0, any free port) for t's Service.
func (a *serviceAlloc) allocPort(ctx context.Context, t *allocTxn, port int32) (int32, error) {
	if port == 0 {
		if t.dryRun {
			off, err := a.ports.pickFree(ctx)
			if err != nil {
				return 0, err
			}
			return int32(a.pr.Base + int(off)), nil
		}
		off, rev, err := a.ports.allocateNext(ctx, t.owner)
		if err != nil {
			return 0, err
		}
		t.created = append(t.created, held{a.ports, off, rev})
		return int32(a.pr.Base + int(off)), nil
	}
	if !a.pr.Contains(int(port)) {
		return 0, &errNotInRange{"provided port is not in the valid range. The range of valid ports is " + a.pr.String()}
	}
	if err := a.take(ctx, t, a.ports, uint64(int(port)-a.pr.Base)); err != nil {
		if errors.Is(err, errAllocated) {
			return 0, &errNotInRange{"provided port is already allocated"}
		}
		return 0, err
	}
	return port, nil
}

// portError turns a node port allocation failure into upstream's answer.
func portError(svc *corev1.Service, i int, port int32, err error) error {
	if msg, ok := requestError(err); ok {
		return apierrors.NewInvalid(serviceGK, svc.Name, field.ErrorList{
			field.Invalid(field.NewPath("spec", "ports").Index(i).Child("nodePort"), port, msg)})
	}
	return apierrors.NewInternalError(fmt.Errorf("failed to allocate a nodePort: %v", err))
}

// allocNodePorts gives each port of a NodePort or LoadBalancer Service
// its node port: the one asked for, else a free one. Ports with the same
// number (TCP and UDP) share one node port, as upstream. Values in keep
// (the Service's node ports before an update) are its own already.
func (a *serviceAlloc) allocNodePorts(ctx context.Context, t *allocTxn, svc *corev1.Service, keep map[int32]bool) error {
	if !needsNodePort(svc) {
		return nil
	}
	byPort := map[int32]int32{}
	taken := map[int32]bool{}
	for i := range svc.Spec.Ports {
		p := &svc.Spec.Ports[i]
		if p.NodePort == 0 && !shouldAllocateNodePorts(svc) {
			continue // no new ports, but requested ones are honoured
		}
		if np, ok := byPort[p.Port]; ok && p.NodePort == 0 {
			p.NodePort = np
			continue
		}
		if p.NodePort == 0 {
			if np := requestedNodePort(svc.Spec.Ports[i+1:], p.Port); np != 0 {
				p.NodePort = np
			}
		}
		if p.NodePort != 0 && (keep[p.NodePort] || taken[p.NodePort]) {
			byPort[p.Port] = p.NodePort
			continue
		}
		np, err := a.allocPort(ctx, t, p.NodePort)
		if err != nil {
			return portError(svc, i, p.NodePort, err)
		}
		p.NodePort = np
		byPort[p.Port] = np
		taken[np] = true
	}
	return nil
}

// requestedNodePort is the node port a later entry for the same port
// number asks for, if any.
func requestedNodePort(ports []corev1.ServicePort, port int32) int32 {
	for _, p := range ports {
		if p.Port == port && p.NodePort != 0 {
			return p.NodePort
		}
	}
	return 0
}

func (a *serviceAlloc) allocHealthCheck(ctx context.Context, t *allocTxn, svc *corev1.Service) error {
	want := svc.Spec.HealthCheckNodePort
	np, err := a.allocPort(ctx, t, want)
	if err != nil {
		if want != 0 {
			return apierrors.NewInternalError(fmt.Errorf("failed to allocate requested HealthCheck NodePort %v: %v", want, errText(err)))
		}
		return apierrors.NewInternalError(fmt.Errorf("failed to allocate a HealthCheck NodePort %v: %v", want, errText(err)))
	}
	svc.Spec.HealthCheckNodePort = np
	return nil
}

func errText(err error) string {
	if msg, ok := requestError(err); ok && msg != "" {
		return msg
	}
	return err.Error()
}

// serviceNodePorts lists the node ports a Service holds, health check
// port included.
func serviceNodePorts(svc *corev1.Service) []int32 {
	seen := map[int32]bool{}
	var out []int32
	for _, p := range svc.Spec.Ports {
		if p.NodePort != 0 && !seen[p.NodePort] {
			seen[p.NodePort] = true
			out = append(out, p.NodePort)
		}
	}
	if hc := svc.Spec.HealthCheckNodePort; hc != 0 && !seen[hc] {
		out = append(out, hc)
	}
	return out
}

func (a *serviceAlloc) freeClusterIPs(t *allocTxn, svc *corev1.Service) {
	for _, ip := range svc.Spec.ClusterIPs {
		addr, err := netip.ParseAddr(ip)
		if err != nil {
			continue
		}
		if off, ok := a.ipr.offset(addr); ok {
			t.freed = append(t.freed, held{r: a.ips, off: off})
		}
	}
}

func (a *serviceAlloc) freePort(t *allocTxn, port int32) {
	if a.pr.Contains(int(port)) {
		t.freed = append(t.freed, held{r: a.ports, off: uint64(int(port) - a.pr.Base)})
	}
}

// updateClusterIPs allocates when a Service stops being ExternalName (or
// never had an address) and frees when it becomes ExternalName. Cluster
// IPs are otherwise immutable, which validation enforces.
func (a *serviceAlloc) updateClusterIPs(ctx context.Context, t *allocTxn, svc, old *corev1.Service) error {
	switch {
	case needsClusterIP(old) && !needsClusterIP(svc):
		a.freeClusterIPs(t, old)
		return nil
	case isHeadless(old) && isHeadless(svc):
		return nil
	case !needsClusterIP(old) || len(old.Spec.ClusterIPs) == 0 && old.Spec.ClusterIP == "":
		return a.allocClusterIPs(ctx, t, svc)
	}
	return nil
}

// updateNodePorts allocates the node ports an update adds and frees the
// ones it drops.
func (a *serviceAlloc) updateNodePorts(ctx context.Context, t *allocTxn, svc, old *corev1.Service) error {
	oldPorts := map[int32]bool{}
	for _, p := range old.Spec.Ports {
		if p.NodePort != 0 {
			oldPorts[p.NodePort] = true
		}
	}
	if err := a.allocNodePorts(ctx, t, svc, oldPorts); err != nil {
		return err
	}
	still := map[int32]bool{}
	for _, p := range svc.Spec.Ports {
		still[p.NodePort] = true
	}
	for np := range oldPorts {
		if !still[np] && np != svc.Spec.HealthCheckNodePort {
			a.freePort(t, np)
		}
	}
	return nil
}

// updateHealthCheck allocates a health check port when a Service starts
// needing one and frees it when it stops.
func (a *serviceAlloc) updateHealthCheck(ctx context.Context, t *allocTxn, svc, old *corev1.Service) error {
	needed, needs := needsHealthCheck(old), needsHealthCheck(svc)
	switch {
	case !needed && needs:
		return a.allocHealthCheck(ctx, t, svc)
	case needed && !needs:
		if hc := old.Spec.HealthCheckNodePort; hc != 0 && !usesNodePort(svc, hc) {
			a.freePort(t, hc)
		}
		svc.Spec.HealthCheckNodePort = 0
	}
	return nil
}

func usesNodePort(svc *corev1.Service, port int32) bool {
	for _, p := range svc.Spec.Ports {
		if p.NodePort == port {
			return true
		}
	}
	return false
}

// Hooks called by the REST handlers. Only Services allocate; every other
// kind passes through.

// allocateOnCreate allocates for a new object about to be stored.
func (s *Server) allocateOnCreate(ctx context.Context, obj runtime.Object, dryRun bool) (*allocTxn, error) {
	svc, ok := obj.(*corev1.Service)
	if !ok || s.svcAlloc == nil {
		return nil, nil
	}
	return s.svcAlloc.allocateCreate(ctx, svc, dryRun)
}

// allocateOnUpdate allocates for an object replacing old.
func (s *Server) allocateOnUpdate(ctx context.Context, obj, old runtime.Object, subresource string, dryRun bool) (*allocTxn, error) {
	svc, ok := obj.(*corev1.Service)
	if !ok || s.svcAlloc == nil || subresource != "" {
		return nil, nil
	}
	return s.svcAlloc.allocateUpdate(ctx, svc, old.(*corev1.Service), dryRun)
}

// releaseOnDelete frees what a deleted object held.
func (s *Server) releaseOnDelete(ctx context.Context, obj runtime.Object) {
	if svc, ok := obj.(*corev1.Service); ok && s.svcAlloc != nil {
		s.svcAlloc.releaseAll(ctx, svc)
	}
}
