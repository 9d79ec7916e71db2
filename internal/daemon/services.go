package daemon

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"skiff.dev/skiff/internal/apiserver"
)

// serviceRanges reads the service CIDR and node port range options
// (empty: the defaults).
func (o ServerOptions) serviceRanges() (netip.Prefix, apiserver.PortRange, error) {
	cidr, ports := apiserver.DefaultServiceCIDR, apiserver.DefaultNodePortRange
	if o.ServiceCIDR != "" {
		p, err := netip.ParsePrefix(o.ServiceCIDR)
		if err != nil {
			return cidr, ports, fmt.Errorf("service CIDR: %w", err)
		}
		if p != p.Masked() {
			return cidr, ports, fmt.Errorf("service CIDR %s: the address has host bits set (did you mean %s?)", p, p.Masked())
		}
		cidr = p
	}
	if o.ServiceNodePortRange != "" {
		r, err := apiserver.ParsePortRange(o.ServiceNodePortRange)
		if err != nil {
			return cidr, ports, fmt.Errorf("service node port range: %w", err)
		}
		ports = r
	}
	return cidr, ports, nil
}

// withServiceRanges sets the API server's allocation ranges.
func withServiceRanges(cidr netip.Prefix, ports apiserver.PortRange) func(*apiserver.Config) {
	return func(c *apiserver.Config) { c.ServiceCIDR, c.NodePortRange = cidr, ports }
}

// The default/kubernetes Service points every pod at the API server: the
// first address of the service CIDR, port 443 (https) to the API
// server's port, with Endpoints and an EndpointSlice naming the address
// the API server advertises. Upstream's API server keeps them itself;
// Skiff writes them at start, through the API.
const (
	kubernetesService = "kubernetes"
	kubernetesPort    = "https"
)

// bootstrapKubernetesService creates or corrects the default/kubernetes
// Service, Endpoints and EndpointSlice. apiAddr is the API server's
// listen address; advertise, if set, the address clients should use.
func bootstrapKubernetesService(ctx context.Context, cfg *rest.Config, cidr netip.Prefix, apiAddr, advertise string) error {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, portStr, _ := net.SplitHostPort(apiAddr)
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return fmt.Errorf("api server address %q: %w", apiAddr, err)
	}
	if err := ensureKubernetesService(ctx, cs, cidr.Masked().Addr().Next(), int32(port)); err != nil {
		return fmt.Errorf("service default/kubernetes: %w", err)
	}
	ip, err := advertiseAddress(apiAddr, advertise)
	if err != nil {
		return err
	}
	if !ip.IsValid() {
		return nil // no address pods could reach: no endpoints
	}
	if err := ensureKubernetesEndpoints(ctx, cs, ip, int32(port)); err != nil {
		return fmt.Errorf("endpoints default/kubernetes: %w", err)
	}
	return nil
}

func ensureKubernetesService(ctx context.Context, cs kubernetes.Interface, ip netip.Addr, port int32) error {
	ports := []corev1.ServicePort{{Name: kubernetesPort, Protocol: corev1.ProtocolTCP, Port: 443, TargetPort: intstr.FromInt32(port)}}
	svcs := cs.CoreV1().Services(metav1.NamespaceDefault)
	cur, err := svcs.Get(ctx, kubernetesService, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = svcs.Create(ctx, &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: kubernetesService, Labels: map[string]string{"component": "apiserver", "provider": "kubernetes"}},
			Spec: corev1.ServiceSpec{
				Type: corev1.ServiceTypeClusterIP, ClusterIP: ip.String(), Ports: ports,
				SessionAffinity: corev1.ServiceAffinityNone,
			},
		}, metav1.CreateOptions{})
		if !apierrors.IsAlreadyExists(err) {
			return err
		}
		cur, err = svcs.Get(ctx, kubernetesService, metav1.GetOptions{})
	}
	if err != nil {
		return err
	}
	if len(cur.Spec.Ports) == 1 && cur.Spec.Ports[0].Name == kubernetesPort && cur.Spec.Ports[0].Port == 443 &&
		cur.Spec.Ports[0].TargetPort == ports[0].TargetPort && cur.Spec.Ports[0].Protocol == corev1.ProtocolTCP &&
		cur.Spec.ClusterIP != "" {
		return nil
	}
	cur.Spec.Ports = ports
	if cur.Spec.ClusterIP == "" {
		// Stored before Skiff allocated cluster IPs: it gets its address now.
		cur.Spec.ClusterIP, cur.Spec.ClusterIPs = ip.String(), nil
	}
	_, err = svcs.Update(ctx, cur, metav1.UpdateOptions{})
	return err
}

func ensureKubernetesEndpoints(ctx context.Context, cs kubernetes.Interface, ip netip.Addr, port int32) error {
	want := &corev1.Endpoints{
		ObjectMeta: metav1.ObjectMeta{Name: kubernetesService, Labels: map[string]string{discoveryv1.LabelSkipMirror: "true"}},
		Subsets: []corev1.EndpointSubset{{
			Addresses: []corev1.EndpointAddress{{IP: ip.String()}},
			Ports:     []corev1.EndpointPort{{Name: kubernetesPort, Port: port, Protocol: corev1.ProtocolTCP}},
		}},
	}
	eps := cs.CoreV1().Endpoints(metav1.NamespaceDefault)
	cur, err := eps.Get(ctx, kubernetesService, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if _, err := eps.Create(ctx, want, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	case err != nil:
		return err
	case !equality.Semantic.DeepEqual(cur.Subsets, want.Subsets) || cur.Labels[discoveryv1.LabelSkipMirror] != "true":
		cur.Subsets = want.Subsets
		if cur.Labels == nil {
			cur.Labels = map[string]string{}
		}
		cur.Labels[discoveryv1.LabelSkipMirror] = "true"
		if _, err := eps.Update(ctx, cur, metav1.UpdateOptions{}); err != nil {
			return err
		}
	}

	addrType := discoveryv1.AddressTypeIPv4
	if ip.Is6() {
		addrType = discoveryv1.AddressTypeIPv6
	}
	wantSlice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: kubernetesService, Labels: map[string]string{discoveryv1.LabelServiceName: kubernetesService}},
		AddressType: addrType,
		Endpoints: []discoveryv1.Endpoint{{
			Addresses:  []string{ip.String()},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)},
		}},
		Ports: []discoveryv1.EndpointPort{{Name: ptr.To(kubernetesPort), Port: ptr.To(port), Protocol: ptr.To(corev1.ProtocolTCP)}},
	}
	slices := cs.DiscoveryV1().EndpointSlices(metav1.NamespaceDefault)
	curSlice, err := slices.Get(ctx, kubernetesService, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if _, err := slices.Create(ctx, wantSlice, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	case err != nil:
		return err
	case curSlice.AddressType != addrType:
		// The address type is immutable: replace the slice.
		if err := slices.Delete(ctx, kubernetesService, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
		if _, err := slices.Create(ctx, wantSlice, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	case !equality.Semantic.DeepEqual(curSlice.Endpoints, wantSlice.Endpoints) || !equality.Semantic.DeepEqual(curSlice.Ports, wantSlice.Ports):
		curSlice.Endpoints, curSlice.Ports = wantSlice.Endpoints, wantSlice.Ports
		if _, err := slices.Update(ctx, curSlice, metav1.UpdateOptions{}); err != nil {
			return err
		}
	}
	return nil
}

// advertiseAddress is the address the kubernetes Service's endpoints
// name: the configured one, else the listen address when it is a
// specific, non-loopback one, else the host's first global unicast
// address (IPv4 preferred). It is invalid when there is none.
func advertiseAddress(listen, configured string) (netip.Addr, error) {
	if configured != "" {
		a, err := netip.ParseAddr(configured)
		if err != nil {
			return netip.Addr{}, fmt.Errorf("advertise address: %w", err)
		}
		return a.Unmap(), nil
	}
	host, _, _ := net.SplitHostPort(listen)
	if a, err := netip.ParseAddr(host); err == nil && a.IsGlobalUnicast() {
		return a.Unmap(), nil
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return netip.Addr{}, nil
	}
	var v6 netip.Addr
	for _, addr := range addrs {
		ipn, ok := addr.(*net.IPNet)
		if !ok {
			continue
		}
		a, ok := netip.AddrFromSlice(ipn.IP)
		if !ok || !a.Unmap().IsGlobalUnicast() {
			continue
		}
		if a = a.Unmap(); a.Is4() {
			return a, nil
		}
		if !v6.IsValid() {
			v6 = a
		}
	}
	return v6, nil
}
