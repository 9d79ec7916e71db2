package control

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"skiff.dev/skiff/internal/mesh/proxy"
)

// GatewayFragment is what Istio Gateways ask of a node's edge proxy
// (internal/ingress runs it): listeners, their route tables and the
// clusters the routes use. The edge proxy merges it into its own Config;
// names are prefixed "gateway|" (listeners, route tables) and
// "outbound|" (clusters, as a sidecar's), so they do not collide with
// the Ingress controller's.
type GatewayFragment struct {
	Listeners   []proxy.Listener   `json:"listeners,omitempty"`
	RouteTables []proxy.RouteTable `json:"routeTables,omitempty"`
	Clusters    []proxy.Cluster    `json:"clusters,omitempty"`
	Warnings    []string           `json:"warnings,omitempty"`
}

// Gateways translates the Gateways whose selector matches the edge
// proxy's labels (Istio's default: "istio: ingressgateway"), and the
// VirtualServices bound to them, with the same route translation as the
// sidecars'. Plain HTTP servers only: HTTPS servers (credentialName),
// TLS passthrough and TCP servers are reported and left out. The proxy's
// labels and namespace stand in for a gateway pod's (sourceLabels,
// sourceNamespace).
func (x *Index) Gateways(labels map[string]string, namespace string) GatewayFragment {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Labels: labels}}
	clusters, encoded := map[string]*proxy.Cluster{}, map[string][]byte{}
	tables := map[string]*proxy.RouteTable{}
	var out GatewayFragment
	seenDomain := map[string]string{} // per port: domain -> VirtualService
	for _, gw := range sortedBy(x.snap.Gateways) {
		if !labelsMatch(gw.Spec.Selector, labels) {
			continue
		}
		b := &builder{x: x, pod: pod, clusters: clusters, encoded: encoded, tables: tables, gateway: gw.Namespace + "/" + gw.Name}
		for _, srv := range gw.Spec.Servers {
			if srv == nil || srv.Port == nil || srv.Port.Number == 0 || srv.Port.Number > 65535 {
				continue
			}
			switch strings.ToUpper(srv.Port.Protocol) {
			case "HTTP", "HTTP2", "GRPC":
			default:
				b.warnf("Gateway %s: server on port %d (%s) is not supported; only plain HTTP servers are", b.gateway, srv.Port.Number, srv.Port.Protocol)
				continue
			}
			if srv.Tls != nil && srv.Tls.HttpsRedirect {
				b.warnf("Gateway %s: httpsRedirect is not supported", b.gateway)
			}
			port := srv.Port.Number
			name := "gateway|" + strconv.Itoa(int(port))
			t := tables[name]
			if t == nil {
				t = &proxy.RouteTable{Name: name}
				tables[name] = t
				out.Listeners = append(out.Listeners, proxy.Listener{Name: name, Address: ":" + strconv.Itoa(int(port)), RouteTable: name})
			}
			for _, vs := range sortedBy(x.snap.VirtualServices) {
				if !b.forThisProxy(vs.Spec.Gateways, vs.Namespace) || len(vs.Spec.Gateways) == 0 {
					continue
				}
				if err := checkVS(&vs.Spec); err != nil {
					b.warnf("VirtualService %s/%s: %v; skipped", vs.Namespace, vs.Name, err)
					continue
				}
				var domains []string
				for _, h := range vs.Spec.Hosts {
					h = strings.ToLower(h)
					if !serverHostMatches(srv.Hosts, h, vs.Namespace, gw.Namespace) {
						continue
					}
					key := name + " " + h
					if other, dup := seenDomain[key]; dup {
						if other != vs.Namespace+"/"+vs.Name {
							b.warnf("VirtualService %s/%s: host %s on port %d is already routed by %s; ignored for it", vs.Namespace, vs.Name, h, port, other)
						}
						continue
					}
					seenDomain[key] = vs.Namespace + "/" + vs.Name
					domains = append(domains, h)
				}
				if len(domains) == 0 {
					continue
				}
				t.VirtualHosts = append(t.VirtualHosts, proxy.VirtualHost{
					Name:    fmt.Sprintf("%s/%s:%d", vs.Namespace, vs.Name, port),
					Domains: domains,
					Routes:  b.vsRoutes(vs, 0),
				})
			}
		}
		out.Warnings = append(out.Warnings, b.warn...)
	}
	for _, n := range slices.Sorted(maps.Keys(tables)) {
		out.RouteTables = append(out.RouteTables, *tables[n])
	}
	for _, n := range slices.Sorted(maps.Keys(clusters)) {
		out.Clusters = append(out.Clusters, *clusters[n])
	}
	return out
}

// serverHostMatches says whether a Gateway server's hosts ("host" or
// "ns/host", ns "*", "." or a name; host "*" or "*.suffix" or a name)
// admit a VirtualService host from namespace vsNamespace ("." is the
// Gateway's namespace).
func serverHostMatches(serverHosts []string, host, vsNamespace, gwNamespace string) bool {
	for _, sh := range serverHosts {
		ns, h, ok := strings.Cut(sh, "/")
		if !ok {
			ns, h = "*", sh
		}
		if ns == "." {
			ns = gwNamespace
		}
		if ns != "*" && ns != vsNamespace {
			continue
		}
		h = strings.ToLower(h)
		if hostMatches(h, host) || (strings.HasPrefix(host, "*.") && hostMatches(host, h)) {
			return true
		}
	}
	return false
}
