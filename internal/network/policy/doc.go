// Package policy enforces networking.k8s.io/v1 NetworkPolicies on a node in
// nftables. It is a node component: the daemon wires an Enforcer next to
// the node agent; nothing else imports this package.
//
// # Semantics
//
// As upstream documents them: a pod is isolated for ingress (egress) when
// some policy in its namespace selects it and has that policy type
// (policyTypes defaults to Ingress, plus Egress when the policy has egress
// rules). A new connection into (out of) an isolated pod is allowed when a
// rule of any policy that selects it for that direction allows it: a rule
// allows when one of its peers matches (none listed: any address) and one
// of its ports matches (none listed: any port and protocol). Peers are a
// podSelector (pods of the policy's namespace), a namespaceSelector (all
// pods of matching namespaces), both in one peer (matching pods of matching
// namespaces), or an ipBlock (cidr minus except, applied literally to
// addresses, pods' included). Ports are numbers, ranges (endPort) or names
// resolved against the containerPorts of the destination pod (the selected
// pod for ingress, the peer pod for egress); protocol defaults to TCP.
// Connection-tracked replies and packets of established connections always
// pass, so a policy change affects new connections only, as in common
// CNIs. Pods are isolated only on the node they run on (Options.NodeName);
// peers may run anywhere. Host-network pods and pods that have finished are
// neither isolated nor peers; pods without an IPv4 address are not peers
// until they have one. When two pods claim one address (a terminating pod
// whose address a new pod already has), it is the live pod's, else the
// newer pod's.
//
// # Where packets are filtered
//
// Pods sit on the node's bridge; br_netfilter makes bridged IPv4 traffic
// traverse the ip hooks, so pod-to-pod traffic on the node, pod-to-remote
// and remote-to-pod traffic all pass the forward hook. For bridged packets
// that hook sees the bridge as both iifname and oifname, never the pods'
// veths (checked on this kernel), so the table's base chains match
// addresses only, after NAT:
//
//	table ip skiff-policy {
//	  map ingress-pods { type ipv4_addr : verdict }   # isolated pod IP : goto in-<group>
//	  map egress-pods  { type ipv4_addr : verdict }   # isolated pod IP : goto out-<group>
//	  chain forward-egress   { filter, forward, priority filter;    ct established/related accept; ip saddr vmap @egress-pods }
//	  chain forward-ingress  { filter, forward, priority filter+10; ct established/related accept; ip daddr vmap @ingress-pods }
//	  chain input-egress     { filter, input,   priority filter;    ct established/related accept; ip saddr vmap @egress-pods }
//	  chain in-<group>  { jump in/<ns>/<policy> ...; drop }   # one per set of policies selecting a pod
//	  chain in/<ns>/<policy>  { <rule matches> accept ... }   # one per policy and direction
//	  set pods-<hash>  { ipv4_addr }            # pods matching one peer selector
//	  set port-<hash>  { ipv4_addr }            # ... that also resolve a named port to one number
//	  set cidr-<hash>  { ipv4_addr; interval }  # an ipBlock
//	}
//
// Egress and ingress are separate base chains because both must accept:
// an accept ends only its own base chain, a drop is final. The bridge's own
// table (skiff-node) accepts pod-to-pod traffic in its forward chain; that
// does not override a drop here, and this table never accepts anything the
// bridge's table drops. Service traffic has been DNATed (table skiff-proxy,
// nat prerouting) before the forward hook, so policies see the chosen
// endpoint, as upstream.
//
// Traffic the node itself sends to its pods (probes, the API server's
// proxy) leaves through the output hook, which this table leaves alone, so
// it is always allowed, as in common CNIs. Traffic from pods to the node's
// own addresses passes the input hook, where egress rules apply.
//
// # The node's DNS server
//
// Pods resolve names through the DNS server on the node (behind the
// kube-dns Service, e.g. 10.244.0.1:53), which is no pod. For selector
// matching each address in Options.NodeDNS counts as a pod in namespace
// kube-system labelled k8s-app=kube-dns with container ports dns (53/UDP)
// and dns-tcp (53/TCP), like CoreDNS's pods. So the usual "allow DNS"
// egress rules work: ports 53/UDP with no peers, with
// namespaceSelector: {}, or with kube-system and k8s-app=kube-dns
// selectors. It is never isolated itself.
//
// # Programming
//
// Translate is a pure function from policies, pods and namespaces to the
// desired table (a Ruleset); Enforcer keeps the last Ruleset it programmed
// and applies the difference in one atomic nftables batch: set elements
// added and removed, changed chains flushed and refilled, dispatch map
// entries moved, unused chains and sets deleted. The table is created (or
// replaced) whole when Run starts and after a failed batch, and removed
// when Run returns. A batch is one netlink message, so the socket buffers
// are raised as nft does. IPv4 only, like the pods network.
package policy
