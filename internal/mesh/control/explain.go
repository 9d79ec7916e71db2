package control

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	istioclient "istio.io/client-go/pkg/clientset/versioned"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"skiff.dev/skiff/internal/mesh/meshconfig"
	"skiff.dev/skiff/internal/mesh/proxy"
)

// ListSnapshot reads a Snapshot from the API (what `skiff mesh explain`
// translates). Istio kinds the server does not serve are left empty.
func ListSnapshot(ctx context.Context, client kubernetes.Interface, istio istioclient.Interface) (*Snapshot, error) {
	snap := &Snapshot{}
	all := metav1.ListOptions{}
	svcs, err := client.CoreV1().Services("").List(ctx, all)
	if err != nil {
		return nil, fmt.Errorf("services: %w", err)
	}
	for i := range svcs.Items {
		snap.Services = append(snap.Services, &svcs.Items[i])
	}
	ess, err := client.DiscoveryV1().EndpointSlices("").List(ctx, all)
	if err != nil {
		return nil, fmt.Errorf("endpoint slices: %w", err)
	}
	for i := range ess.Items {
		snap.EndpointSlices = append(snap.EndpointSlices, &ess.Items[i])
	}
	pods, err := client.CoreV1().Pods("").List(ctx, all)
	if err != nil {
		return nil, fmt.Errorf("pods: %w", err)
	}
	for i := range pods.Items {
		snap.Pods = append(snap.Pods, &pods.Items[i])
	}
	// Istio kinds: a missing kind (not served) is no error.
	skip := func(err error) error {
		if err == nil || apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}
	n, sec := istio.NetworkingV1(), istio.SecurityV1()
	if l, err := n.VirtualServices("").List(ctx, all); skip(err) != nil {
		return nil, fmt.Errorf("virtual services: %w", err)
	} else if err == nil {
		snap.VirtualServices = append(snap.VirtualServices, l.Items...)
	}
	if l, err := n.DestinationRules("").List(ctx, all); skip(err) != nil {
		return nil, fmt.Errorf("destination rules: %w", err)
	} else if err == nil {
		snap.DestinationRules = append(snap.DestinationRules, l.Items...)
	}
	if l, err := n.ServiceEntries("").List(ctx, all); skip(err) != nil {
		return nil, fmt.Errorf("service entries: %w", err)
	} else if err == nil {
		snap.ServiceEntries = append(snap.ServiceEntries, l.Items...)
	}
	if l, err := n.Sidecars("").List(ctx, all); skip(err) != nil {
		return nil, fmt.Errorf("sidecars: %w", err)
	} else if err == nil {
		snap.Sidecars = append(snap.Sidecars, l.Items...)
	}
	if l, err := sec.PeerAuthentications("").List(ctx, all); skip(err) != nil {
		return nil, fmt.Errorf("peer authentications: %w", err)
	} else if err == nil {
		snap.PeerAuthentications = append(snap.PeerAuthentications, l.Items...)
	}
	if l, err := sec.AuthorizationPolicies("").List(ctx, all); skip(err) != nil {
		return nil, fmt.Errorf("authorization policies: %w", err)
	} else if err == nil {
		snap.AuthorizationPolicies = append(snap.AuthorizationPolicies, l.Items...)
	}
	if l, err := sec.RequestAuthentications("").List(ctx, all); skip(err) != nil {
		return nil, fmt.Errorf("request authentications: %w", err)
	} else if err == nil {
		snap.RequestAuthentications = append(snap.RequestAuthentications, l.Items...)
	}
	return snap, nil
}

// Explain writes doc for people: the workload, the outbound chains with
// their routes, the clusters with their endpoints, the inbound chains
// with their mTLS modes, authorization, and the warnings.
func Explain(w io.Writer, doc *meshconfig.Sidecar, warnings []string) {
	wl := doc.Workload
	fmt.Fprintf(w, "Pod:       %s/%s (%s)\n", wl.Namespace, wl.Pod, wl.PodIP)
	fmt.Fprintf(w, "Workload:  %s (service %s, revision %s)\n", wl.Name, wl.CanonicalService, wl.CanonicalRevision)
	fmt.Fprintf(w, "Identity:  spiffe://%s", wl.Principal)
	if doc.Proxy.Identity == nil {
		fmt.Fprint(w, " (certificate issued by the node)")
	}
	fmt.Fprintf(w, "\nVersion:   %s\n", doc.Version)
	tables := map[string]*proxy.RouteTable{}
	for i := range doc.Proxy.RouteTables {
		tables[doc.Proxy.RouteTables[i].Name] = &doc.Proxy.RouteTables[i]
	}
	for _, l := range doc.Proxy.Listeners {
		if l.Capture == nil {
			continue
		}
		fmt.Fprintf(w, "\n%s chains (%s, unmatched: %s):\n", strings.ToUpper(string(l.Capture.Direction[:1]))+string(l.Capture.Direction[1:]), l.Address, unmatchedName(l.Capture.Unmatched))
		for _, c := range l.Capture.Chains {
			fmt.Fprintf(w, "  %s  %s", matchString(c.Match), c.Name)
			if l.Capture.Direction == proxy.Inbound {
				fmt.Fprintf(w, "  mTLS %s", mtlsName(c.MTLS))
			}
			switch {
			case c.TCPCluster != "":
				fmt.Fprintf(w, "  TCP → %s\n", c.TCPCluster)
			case c.RouteTable != "":
				fmt.Fprintf(w, "  HTTP\n")
				if t := tables[c.RouteTable]; t != nil {
					explainTable(w, t)
				}
			default:
				fmt.Fprintf(w, "  → original destination\n")
			}
		}
	}
	fmt.Fprintf(w, "\nClusters:\n")
	for _, c := range doc.Proxy.Clusters {
		var attrs []string
		if c.TCP {
			attrs = append(attrs, "tcp")
		} else if c.Protocol != "" {
			attrs = append(attrs, string(c.Protocol))
		}
		if c.LB != "" {
			attrs = append(attrs, "lb "+string(c.LB))
		}
		if c.TLS != nil {
			t := "tls " + string(c.TLS.Mode)
			if c.TLS.Auto {
				t += " (auto: mesh endpoints only)"
			}
			attrs = append(attrs, t)
		}
		if c.Pool != nil {
			attrs = append(attrs, "connection limits")
		}
		if c.Outlier != nil {
			attrs = append(attrs, "outlier detection")
		}
		fmt.Fprintf(w, "  %s", c.Name)
		if len(attrs) > 0 {
			fmt.Fprintf(w, "  [%s]", strings.Join(attrs, ", "))
		}
		fmt.Fprintln(w)
		if len(c.Endpoints) == 0 {
			fmt.Fprintf(w, "    (no endpoints: requests answer 503)\n")
		}
		for _, e := range c.Endpoints {
			mesh := ""
			if e.Mesh {
				mesh = "  mesh"
			}
			fmt.Fprintf(w, "    %s%s\n", e.Address, mesh)
		}
	}
	fmt.Fprintf(w, "\nAuthorization: %+v\n", doc.Authz)
	if len(warnings) > 0 {
		fmt.Fprintf(w, "\nWarnings:\n")
		for _, x := range warnings {
			fmt.Fprintf(w, "  %s\n", x)
		}
	}
}

func unmatchedName(u proxy.UnmatchedPolicy) string {
	if u == proxy.Blackhole {
		return "blocked (REGISTRY_ONLY)"
	}
	return "passed through"
}

func mtlsName(m proxy.MTLSMode) string {
	if m == proxy.MTLSDisable {
		return "disable"
	}
	return string(m)
}

func matchString(m proxy.ChainMatch) string {
	addr := "*"
	if len(m.Addresses) > 0 {
		addr = strings.Join(m.Addresses, ",")
	}
	port := "*"
	if m.Port != 0 {
		port = fmt.Sprint(m.Port)
	}
	return addr + ":" + port
}

func explainTable(w io.Writer, t *proxy.RouteTable) {
	for _, vh := range t.VirtualHosts {
		fmt.Fprintf(w, "      hosts %s\n", strings.Join(vh.Domains, ", "))
		for _, r := range vh.Routes {
			fmt.Fprintf(w, "        %-14s %s → %s\n", r.Name, routeMatchString(r.Match), routeAction(r))
		}
	}
}

func routeMatchString(m proxy.RouteMatch) string {
	var parts []string
	if m.Path.Kind != proxy.PathAny {
		parts = append(parts, fmt.Sprintf("path %s %q", m.Path.Kind, m.Path.Value))
	}
	if len(m.Methods) > 0 {
		parts = append(parts, "method "+strings.Join(m.Methods, "|"))
	}
	for _, h := range m.Headers {
		not := ""
		if h.Invert {
			not = "not "
		}
		parts = append(parts, fmt.Sprintf("%sheader %s %s %q", not, h.Name, h.Kind, h.Value))
	}
	for _, q := range m.QueryParams {
		parts = append(parts, fmt.Sprintf("query %s %s %q", q.Name, q.Kind, q.Value))
	}
	if len(parts) == 0 {
		return "any request"
	}
	return strings.Join(parts, " and ")
}

func routeAction(r proxy.Route) string {
	var s string
	switch {
	case r.Redirect != nil:
		s = fmt.Sprintf("redirect %d to %s%s%s", cmpOr(r.Redirect.Code, 301), r.Redirect.Host, r.Redirect.Path, r.Redirect.PrefixRewrite)
	case r.DirectResponse != nil:
		s = fmt.Sprintf("answer %d", r.DirectResponse.Status)
	default:
		var cs []string
		for _, c := range r.Clusters {
			if len(r.Clusters) > 1 {
				cs = append(cs, fmt.Sprintf("%s (weight %d)", c.Cluster, c.Weight))
			} else {
				cs = append(cs, c.Cluster)
			}
		}
		s = strings.Join(cs, ", ")
	}
	var extra []string
	if r.Rewrite != nil {
		extra = append(extra, "rewrite")
	}
	if r.Timeout > 0 {
		extra = append(extra, "timeout "+r.Timeout.String())
	}
	if r.Retry != nil && r.Retry.Attempts > 0 {
		extra = append(extra, fmt.Sprintf("%d retries", r.Retry.Attempts))
	}
	if r.Fault != nil {
		extra = append(extra, "fault")
	}
	if len(r.Mirrors) > 0 {
		extra = append(extra, "mirror")
	}
	if r.CORS != nil {
		extra = append(extra, "cors")
	}
	if len(extra) > 0 {
		s += "  (" + strings.Join(extra, ", ") + ")"
	}
	return s
}

func cmpOr(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// ReadStatuses reads the proxies' states every node published.
func ReadStatuses(ctx context.Context, client kubernetes.Interface) ([]ProxyStatus, error) {
	cms, err := client.CoreV1().ConfigMaps(StatusNamespace).List(ctx, metav1.ListOptions{LabelSelector: StatusLabel})
	if err != nil {
		return nil, fmt.Errorf("proxy status: %w", err)
	}
	var out []ProxyStatus
	for _, cm := range cms.Items {
		for _, k := range slices.Sorted(maps.Keys(cm.Data)) {
			var st ProxyStatus
			if err := json.Unmarshal([]byte(cm.Data[k]), &st); err == nil {
				out = append(out, st)
			}
		}
	}
	slices.SortFunc(out, func(a, b ProxyStatus) int {
		return strings.Compare(a.Namespace+"/"+a.Pod, b.Namespace+"/"+b.Pod)
	})
	return out, nil
}

// WriteStatusTable writes statuses as `istioctl proxy-status` does.
func WriteStatusTable(w io.Writer, statuses []ProxyStatus, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	fmt.Fprintln(tw, "POD\tNAMESPACE\tNODE\tSTATUS\tVERSION SENT\tVERSION APPLIED/ERROR\tAGE")
	for _, st := range statuses {
		state := "SYNCED"
		switch {
		case st.Sent == "":
			state = "NOT SENT"
		case st.Error != "":
			state = "REJECTED"
		case st.Applied != st.Current:
			state = "STALE"
		}
		applied := cmpString(st.Applied, "-")
		if st.Error != "" {
			applied = "error: " + st.Error
		}
		age := "-"
		if !st.Connected.IsZero() {
			age = now.Sub(st.Connected).Truncate(time.Second).String()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", st.Pod, st.Namespace, st.Node, state, cmpString(st.Sent, "-"), applied, age)
	}
	tw.Flush()
}

func cmpString(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
