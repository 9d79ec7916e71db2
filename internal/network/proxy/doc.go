// Package proxy is the node's service proxy (kube-proxy's job): it watches
// Services, EndpointSlices (discovery/v1) and this node's Node, and keeps
// an nftables table of its own (family ip, default "skiff-proxy") that
// sends traffic for ClusterIPs, NodePorts, external IPs and load-balancer
// IPs to the Services' endpoints, in the kernel. Only the daemon (the node
// agent's composition) imports it.
//
// The layout is kube-proxy's nftables mode. In nft syntax, for a Service
// default/hello (ClusterIP 10.96.0.10, port http 80 → 8080, NodePort
// 30080) with two endpoints:
//
//	table ip skiff-proxy {
//	  map service-ips       { ipv4_addr . inet_proto . inet_service : verdict }
//	    # 10.96.0.10 . tcp . 80 : goto svc-HASH-default/hello/tcp/http
//	  map service-nodeports { inet_proto . inet_service : verdict }
//	    # tcp . 30080 : goto ext-HASH-default/hello/tcp/http
//	  map no-endpoint-services, no-endpoint-nodeports   # same keys: goto reject-chain, or drop
//	  set cluster-ips       # every ClusterIP
//
//	  chain nat-prerouting, nat-output { jump services }      # dstnat
//	  chain nat-postrouting { jump masquerading }             # srcnat
//	  chain filter-input, filter-forward, filter-output {     # dstnat - 10
//	    ct state new jump endpoints-check }
//	  chain filter-forward, filter-output-post-dnat {         # after DNAT
//	    ct state new jump cluster-ips-check }
//	  chain services {
//	    ip daddr . meta l4proto . th dport vmap @service-ips
//	    fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports }
//	  chain endpoints-check { the same lookups in the no-endpoint maps }
//	  chain cluster-ips-check {
//	    ip daddr @cluster-ips goto reject-chain   # a port the Service does not have
//	    ip daddr 10.96.0.0/12 drop }              # an unallocated ClusterIP
//	  chain svc-HASH-default/hello/tcp/http {
//	    ip daddr 10.96.0.10 ip saddr != PODCIDR jump mark-for-masquerade
//	    numgen random mod 2 vmap @spread-svc-HASH-default/hello/tcp/http }
//	  map spread-svc-HASH-default/hello/tcp/http {   # type mark : verdict
//	    0 : goto ep-…__10.244.0.5/8080, 1 : goto ep-… }
//	  chain ext-HASH-default/hello/tcp/http { jump mark-for-masquerade; goto svc-… }
//	  chain ep-HASH-default/hello/tcp/http__10.244.0.5/8080 {
//	    ip saddr 10.244.0.5 jump mark-for-masquerade   # hairpin
//	    meta l4proto tcp dnat to 10.244.0.5:8080 }
//	  chain mark-for-masquerade { meta mark set meta mark | 0x4000 }
//	  chain masquerading { mark unset: return; clear it; masquerade fully-random }
//	}
//
// Semantics are kube-proxy's: ready endpoints, else serving terminating
// ones; topology hints; named target ports resolved per EndpointSlice;
// TCP, UDP and SCTP; sessionAffinity ClientIP (a timeout set per endpoint,
// "update @aff-… { ip saddr timeout Ns }"); a Service without usable
// endpoints rejects (TCP reset, else ICMP port unreachable); traffic
// policies Local (internal: only this node's endpoints, else drop;
// external: only this node's endpoints, client address kept, pods and the
// node itself exempt); hairpin and off-pod-network traffic masqueraded,
// pod → Service → pod traffic not. Load-balancer ingress IPs (except
// ipMode Proxy) and externalIPs are treated alike. Not done: IPv6,
// loadBalancerSourceRanges, healthCheckNodePort servers.
//
// Changes are incremental: a change to one Service or its slices rewrites
// only that Service's chains, sets and map elements, in one netlink batch
// (replacing an endpoint changes map elements only). Each policy chain
// spreads through a named map rather than an anonymous one: the kernel
// binds an anonymous set by walking the whole batch, which made a first
// sync of thousands of Services quadratic. (nft lists a spread map's keys
// as marks, 0x00000000…, because it has no plain host-order integer type.) Run's first pass (and one every Options.FullSyncPeriod,
// and after a failed batch) rewrites the whole table in one atomic batch
// from what the kernel has, without removing the table, so traffic keeps
// flowing across restarts. Chains a Service no longer needs are flushed at
// once and deleted a little later. UDP flows left pointing at a removed
// endpoint are deleted from conntrack.
//
// Options and their defaults: NodeName (none: no endpoint is local);
// NodeIPs (the Node's InternalIP addresses); PodCIDR (the Node's
// spec.podCIDR); ServiceCIDR ("10.96.0.0/12"); NodePortAddresses (every
// local address but loopback; "primary" for NodeIPs); Table
// ("skiff-proxy"); NetNS (the caller's namespace); FullSyncPeriod (1h).
//
// Around it: the node bridge's rules must let DNATed traffic reach pods
// (they do: "oifname B ct status dnat accept") and must not masquerade
// pod → Service → pod traffic (the pods network sets
// bridge.NetworkConfig.NoHairpinNAT); the node needs a route for the
// service range (a default route will do) for its own traffic to
// ClusterIPs. Run leaves the table in place when it returns; Cleanup
// deletes it, touching no other table.
package proxy
