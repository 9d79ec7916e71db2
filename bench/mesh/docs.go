package main

import (
	"fmt"
	"net"

	"skiff.dev/skiff/internal/mesh/meshconfig"
	"skiff.dev/skiff/internal/mesh/proxy"
)

// The mesh paths' two pods: client calls server on appPort; the server
// also answers, uncaptured, on directPort (the direct path).
const (
	appPort    = 8080
	directPort = 9080
	service    = "server.bench.svc.cluster.local"
)

func workload(name string, ip net.IP) meshconfig.Workload {
	return meshconfig.Workload{
		Pod: name + "-0", Namespace: "bench", PodIP: ip.String(), Name: name, ServiceAccount: name,
		CanonicalService: name, CanonicalRevision: "latest", App: name,
		Principal: "cluster.local/ns/bench/sa/" + name, TrustDomain: "cluster.local",
	}
}

// clientDoc is the client sidecar's document, as the node's mesh
// server would compute it: an outbound capture listener whose chain for
// appPort routes to the server's cluster, mesh mTLS to it when mtls.
func clientDoc(ip, serverIP net.IP, id *proxy.Identity, mtls bool) *meshconfig.Sidecar {
	cluster := proxy.Cluster{
		Name:      fmt.Sprintf("outbound|%d||%s", appPort, service),
		Endpoints: []proxy.Endpoint{{Address: fmt.Sprintf("%s:%d", serverIP, appPort), Mesh: true, Labels: map[string]string{"app": "server"}}},
		Metadata: map[string]string{
			"destination_service": service, "destination_service_name": "server",
			"destination_service_namespace": "bench",
		},
	}
	if mtls {
		cluster.TLS = &proxy.UpstreamTLS{Mode: proxy.TLSIstioMutual, Auto: true,
			SubjectAltNames: []string{"spiffe://cluster.local/ns/bench/sa/server"}}
	}
	table := fmt.Sprint(appPort)
	return &meshconfig.Sidecar{
		Version:  "bench-1",
		Workload: workload("client", ip),
		Proxy: proxy.Config{
			Version: "bench-1",
			Listeners: []proxy.Listener{{Name: "virtualOutbound", Address: fmt.Sprintf("0.0.0.0:%d", meshconfig.OutboundPort),
				Capture: &proxy.Capture{Direction: proxy.Outbound, Chains: []proxy.FilterChain{
					{Name: "0.0.0.0_" + table, Match: proxy.ChainMatch{Port: appPort}, RouteTable: table},
				}}}},
			RouteTables: []proxy.RouteTable{{Name: table, VirtualHosts: []proxy.VirtualHost{{
				Name:    fmt.Sprintf("%s:%d", service, appPort),
				Domains: []string{service, "server", "server.bench", serverIP.String()},
				Routes:  []proxy.Route{{Name: "default", Clusters: []proxy.WeightedCluster{{Cluster: cluster.Name}}}},
			}}}},
			Clusters: []proxy.Cluster{cluster},
			Identity: id,
		},
	}
}

// serverDoc is the server sidecar's document: an inbound capture
// listener whose chain for appPort requires mesh mTLS (STRICT) when mtls
// and routes to the app on the pod's address.
func serverDoc(ip net.IP, id *proxy.Identity, mtls bool) *meshconfig.Sidecar {
	name := fmt.Sprintf("inbound|%d||", appPort)
	mode := proxy.MTLSDisable
	if mtls {
		mode = proxy.MTLSStrict
	}
	return &meshconfig.Sidecar{
		Version:  "bench-1",
		Workload: workload("server", ip),
		Proxy: proxy.Config{
			Version: "bench-1",
			Listeners: []proxy.Listener{{Name: "virtualInbound", Address: fmt.Sprintf("0.0.0.0:%d", meshconfig.InboundPort),
				Capture: &proxy.Capture{Direction: proxy.Inbound, Chains: []proxy.FilterChain{
					{Name: name, Match: proxy.ChainMatch{Port: appPort}, RouteTable: name, MTLS: mode},
				}}}},
			RouteTables: []proxy.RouteTable{{Name: name, VirtualHosts: []proxy.VirtualHost{{
				Name: name, Domains: []string{"*"},
				Routes: []proxy.Route{{Name: "default", Clusters: []proxy.WeightedCluster{{Cluster: name}}}},
			}}}},
			Clusters: []proxy.Cluster{{Name: name, Endpoints: []proxy.Endpoint{{Address: fmt.Sprintf("%s:%d", ip, appPort)}},
				Metadata: map[string]string{"destination_service": service, "destination_service_name": "server",
					"destination_service_namespace": "bench"}}},
			Identity: id,
		},
	}
}
