// Package dns is the node's cluster DNS server (what CoreDNS's kubernetes
// and forward plugins do in a kubeadm cluster), run by the node agent on
// each node. It answers on the pods bridge's gateway address (UDP and
// TCP, port 53), which pods reach through the kube-dns Service's
// ClusterIP (10.96.0.10): the service proxy sends that address to the
// node-local endpoint this package publishes.
//
// Names in the cluster zone (Options.Zone, default cluster.local) come
// from an index of Services and EndpointSlices, kept up to date per
// changed Service (records of one Service are replaced, nothing is
// rebuilt whole), following the Kubernetes DNS specification:
//
//   - <svc>.<ns>.svc.<zone>: A/AAAA of the ClusterIPs; for a headless
//     Service the ready endpoints' addresses; for an ExternalName Service
//     a CNAME (followed in the answer, through the forwarder when the
//     target is outside the zone);
//   - <host>.<svc>.<ns>.svc.<zone>: one endpoint, host being its hostname
//     (StatefulSet pods: web-0.nginx.default.svc.cluster.local) or its
//     address with dashes (10-244-0-5);
//   - _<port>._<proto>.<svc>.<ns>.svc.<zone>: SRV for named ports (the
//     Service's name for a ClusterIP, each ready endpoint's name for a
//     headless Service);
//   - PTR for ClusterIPs and headless endpoints' addresses;
//   - <a-b-c-d>.<ns>.pod.<zone>: A for any well-formed address (CoreDNS's
//     "pods insecure");
//   - dns-version.<zone> TXT, the zone's SOA and NS.
//
// Names that do not exist get NXDOMAIN, names that exist without the asked
// type NOERROR with no answer; both carry the zone's SOA, whose minimum is
// the record TTL (Options.TTL, default 5 s). UDP answers larger than the
// client's buffer (512 bytes, or its EDNS0 size) are truncated with TC set.
//
// Every other name goes to the node's upstream resolvers (Options.Upstreams,
// default the nameservers of /etc/resolv.conf, or of
// /run/systemd/resolve/resolv.conf when the former names only a loopback
// stub resolver such as systemd-resolved's 127.0.0.53), over UDP with a TCP
// retry when truncated, each exchange bounded by Options.UpstreamTimeout;
// when all fail the client gets SERVFAIL. Answers are cached (bounded,
// least recently used out first) for their TTL, denials for their SOA's
// minimum (RFC 2308). The server never forwards to itself: its own address
// is dropped from the upstreams, and a query that comes back carrying the
// server's own loop-detection EDNS0 option is answered SERVFAIL.
//
// With Options.NodeName set, the server keeps the EndpointSlice
// kube-system/kube-dns-<node> (managed-by dns.skiff.dev) pointing at its
// address, and deletes it when Run returns. EnsureService creates the
// kube-dns Service itself; the API server's bootstrap calls it.
//
// Only the node's composition root (internal/daemon) should import this
// package.
package dns
