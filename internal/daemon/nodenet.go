package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"skiff.dev/skiff/internal/controllers/servicelb"
	"skiff.dev/skiff/internal/ingress"
	"skiff.dev/skiff/internal/network/announce"
	"skiff.dev/skiff/internal/network/dns"
	"skiff.dev/skiff/internal/network/policy"
	"skiff.dev/skiff/internal/network/proxy"
)

// NodeNetOptions configure a node's service networking: the service
// proxy, cluster DNS, NetworkPolicy, the Ingress edge proxy and the
// announcement of LoadBalancer addresses.
type NodeNetOptions struct {
	// Disable runs none of them (a node that only runs pods).
	Disable bool
	// ServiceCIDR is where ClusterIPs come from (default 10.96.0.0/12).
	ServiceCIDR string
	// LBPool are the LoadBalancer addresses this node may announce
	// (servicelb's pool syntax); empty: LoadBalancers get node addresses
	// and nothing is announced.
	LBPool []string
	// IngressHTTP and IngressHTTPS are the edge proxy's listen addresses
	// (default ":80", ":443"; "-" disables the edge proxy).
	IngressHTTP, IngressHTTPS string
	// Uplink is the interface LoadBalancer addresses are announced on
	// (default: the default route's).
	Uplink string
	// ResolvConf is the node's resolver configuration: cluster DNS
	// forwards other names to its nameservers and pods with dnsPolicy
	// Default get it (default /etc/resolv.conf).
	ResolvConf string
}

// runNodeNet runs the node's networking components until ctx ends. They
// share one informer factory that sees the whole cluster (peers of
// NetworkPolicies and endpoints live on other nodes). done is closed once
// every component has returned.
func runNodeNet(ctx context.Context, cfg *rest.Config, client kubernetes.Interface, nodeName, podCIDR string, o NodeNetOptions, log *slog.Logger) (done <-chan struct{}, err error) {
	finished := make(chan struct{})
	if o.Disable {
		close(finished)
		return finished, nil
	}
	gateway, err := podGateway(podCIDR)
	if err != nil {
		return nil, err
	}
	pool, err := servicelb.ParsePool(o.LBPool)
	if err != nil {
		return nil, fmt.Errorf("load balancer pool: %w", err)
	}
	factory := informers.NewSharedInformerFactory(client, 0)
	type component struct {
		name string
		run  func(context.Context) error
	}
	comps := []component{
		{"service-proxy", proxy.New(client, factory, log, proxy.Options{
			NodeName: nodeName, PodCIDR: podCIDR, ServiceCIDR: o.ServiceCIDR,
		}).Run},
		{"dns", dns.New(client, factory, log, dns.Options{
			NodeName: nodeName, Listen: gateway.String(), ResolvConf: o.ResolvConf,
		}).Run},
		{"network-policy", policy.New(client, factory, log, policy.Options{
			NodeName: nodeName, NodeDNS: []netip.Addr{gateway},
		}).Run},
		{"announce", announce.New(client, factory, log, announce.Options{
			NodeName: nodeName, Interface: o.Uplink, Pool: pool,
		}).Run},
	}
	if o.IngressHTTP != "-" {
		gw, err := edgeGateway(cfg, factory, log)
		if err != nil {
			return nil, err
		}
		comps = append(comps, component{"mesh-gateway", gw.Run}, component{"ingress", ingress.New(client, factory, log, ingress.Options{
			HTTPAddr: o.IngressHTTP, HTTPSAddr: o.IngressHTTPS, NodeName: nodeName, Gateway: gw,
		}).Run})
	}
	factory.Start(ctx.Done())
	var wg sync.WaitGroup
	for _, c := range comps {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.run(ctx); err != nil && ctx.Err() == nil {
				log.Error("node component stopped", "component", c.name, "err", err)
			}
		}()
	}
	go func() {
		wg.Wait()
		factory.Shutdown()
		close(finished)
	}()
	return finished, nil
}

// podGateway is the pods bridge's address: the first of the pod CIDR.
func podGateway(podCIDR string) (netip.Addr, error) {
	p, err := netip.ParsePrefix(podCIDR)
	if err != nil || !p.Addr().Is4() {
		return netip.Addr{}, fmt.Errorf("pod CIDR %q: want an IPv4 prefix", podCIDR)
	}
	return p.Masked().Addr().Next(), nil
}

// clusterDNSIP is the cluster DNS Service's address: the tenth of the
// service CIDR (10.96.0.10 for the default), as kubeadm and k3s choose.
func clusterDNSIP(serviceCIDR string) (netip.Addr, error) {
	if serviceCIDR == "" {
		serviceCIDR = proxy.DefaultServiceCIDR
	}
	p, err := netip.ParsePrefix(serviceCIDR)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("service CIDR %q: %w", serviceCIDR, err)
	}
	a := p.Masked().Addr()
	for range 10 {
		a = a.Next()
	}
	if !p.Contains(a) {
		return netip.Addr{}, fmt.Errorf("service CIDR %q is too small for the cluster DNS address", serviceCIDR)
	}
	return a, nil
}

// bootstrapNetworking creates what every node's networking expects of
// the cluster: the kube-dns Service at the cluster DNS address and the
// default IngressClass "skiff".
func bootstrapNetworking(ctx context.Context, cfg *rest.Config, serviceCIDR netip.Prefix, log *slog.Logger) error {
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	if ip, err := clusterDNSIP(serviceCIDR.String()); err != nil {
		// A tiny service CIDR (tests) has no room for it: pods then use
		// the node's resolvers.
		log.Warn("no kube-dns Service", "component", "daemon", "err", err)
	} else if err := dns.EnsureService(ctx, client, ip.String()); err != nil {
		return fmt.Errorf("kube-dns service: %w", err)
	}
	if err := ingress.EnsureIngressClass(ctx, client); err != nil {
		return fmt.Errorf("ingress class: %w", err)
	}
	return nil
}
