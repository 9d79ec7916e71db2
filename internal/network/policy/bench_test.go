package policy

import (
	"fmt"
	"net/netip"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// benchWorld is 20 namespaces of 50 pods (1,000 pods, all on this node:
// the worst case) and 10 policies per namespace (200): deny-all, pod and
// namespace selectors, both in one peer, an ipBlock, numeric and named
// ports, and egress limited to DNS and one app.
func benchWorld() Input {
	in := Input{NodeName: "node-1", NodeDNS: []netip.Addr{netip.MustParseAddr("10.244.0.1")}}
	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	for n := range 20 {
		ns := fmt.Sprintf("ns-%02d", n)
		in.Namespaces = append(in.Namespaces, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns,
			Labels: map[string]string{corev1.LabelMetadataName: ns, "team": fmt.Sprintf("team-%d", n%5)}}})
		for i := range 50 {
			ip := netip.AddrFrom4([4]byte{10, 244, byte(n), byte(10 + i)})
			zone := "prod"
			if i%2 == 1 {
				zone = "staging"
			}
			in.Pods = append(in.Pods, &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pod-%02d", i), Namespace: ns,
					Labels: map[string]string{"app": fmt.Sprintf("app-%d", i%10), "zone": zone}},
				Spec: corev1.PodSpec{NodeName: "node-1", Containers: []corev1.Container{{Name: "c", Image: "busybox",
					Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: int32(8080 + i%3)}}}}},
				Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip.String(), PodIPs: []corev1.PodIP{{IP: ip.String()}}},
			})
		}
		sel := func(kv ...string) *metav1.LabelSelector {
			m := map[string]string{}
			for i := 0; i+1 < len(kv); i += 2 {
				m[kv[i]] = kv[i+1]
			}
			return &metav1.LabelSelector{MatchLabels: m}
		}
		port := func(p int32) networkingv1.NetworkPolicyPort {
			return networkingv1.NetworkPolicyPort{Protocol: &tcp, Port: ptr.To(intstr.FromInt32(p))}
		}
		policy := func(name string, target *metav1.LabelSelector, spec networkingv1.NetworkPolicySpec) {
			spec.PodSelector = *target
			in.Policies = append(in.Policies, &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, Spec: spec})
		}
		ingress := func(peers []networkingv1.NetworkPolicyPeer, ports ...networkingv1.NetworkPolicyPort) networkingv1.NetworkPolicySpec {
			return networkingv1.NetworkPolicySpec{Ingress: []networkingv1.NetworkPolicyIngressRule{{From: peers, Ports: ports}}}
		}
		policy("deny-all", sel(), networkingv1.NetworkPolicySpec{})
		for a := range 5 {
			policy(fmt.Sprintf("app-%d-from-app-%d", a, a+5), sel("app", fmt.Sprintf("app-%d", a)),
				ingress([]networkingv1.NetworkPolicyPeer{{PodSelector: sel("app", fmt.Sprintf("app-%d", a+5))}}, port(8080)))
		}
		policy("from-prod", sel("app", "app-9"), ingress([]networkingv1.NetworkPolicyPeer{{PodSelector: sel("zone", "prod")}}))
		policy("from-team", sel("app", "app-8"), ingress([]networkingv1.NetworkPolicyPeer{
			{NamespaceSelector: sel("team", fmt.Sprintf("team-%d", (n+1)%5)), PodSelector: sel("zone", "prod")},
			{IPBlock: &networkingv1.IPBlock{CIDR: "192.168.0.0/16", Except: []string{"192.168.1.0/24"}}},
		}, networkingv1.NetworkPolicyPort{Port: ptr.To(intstr.FromString("http"))}))
		policy("from-namespaces", sel("app", "app-7"), ingress([]networkingv1.NetworkPolicyPeer{
			{NamespaceSelector: sel("team", fmt.Sprintf("team-%d", n%5))}}))
		policy("egress", sel("zone", "staging"), networkingv1.NetworkPolicySpec{
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
			Egress: []networkingv1.NetworkPolicyEgressRule{
				{To: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: sel()}}, Ports: []networkingv1.NetworkPolicyPort{
					{Protocol: &udp, Port: ptr.To(intstr.FromInt32(53))}, port(53)}},
				{To: []networkingv1.NetworkPolicyPeer{{PodSelector: sel("app", "app-1")}}, Ports: []networkingv1.NetworkPolicyPort{
					{Port: ptr.To(intstr.FromString("http"))}}},
			},
		})
	}
	return in
}

func rulesetSize(rs *Ruleset) (rules, elements int) {
	for _, c := range rs.Chains {
		rules += len(c.Rules)
	}
	for _, s := range rs.Sets {
		elements += len(s.Addrs) + len(s.Ranges)
	}
	return rules, elements + len(rs.Ingress) + len(rs.Egress)
}

// BenchmarkTranslate: the pure computation for 200 policies over 1,000
// pods.
func BenchmarkTranslate(b *testing.B) {
	in := benchWorld()
	var rs *Ruleset
	for b.Loop() {
		rs = Translate(in)
	}
	rules, elems := rulesetSize(rs)
	b.ReportMetric(float64(rules), "rules")
	b.ReportMetric(float64(elems), "elements")
	b.ReportMetric(float64(len(rs.Chains)), "chains")
	b.ReportMetric(float64(len(rs.Sets)), "sets")
}

// BenchmarkProgramAll: 200 policies over 1,000 pods from nothing to the
// kernel (translate and one batch replacing the table).
func BenchmarkProgramAll(b *testing.B) {
	k, _ := kernelNS(b)
	in := benchWorld()
	for b.Loop() {
		if err := k.replace(Translate(in)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPodLabelChange: one pod's label flips (zone prod <-> staging,
// which moves it between sets, policies and dispatch groups); the time is
// translate plus the incremental batch, i.e. informer cache to kernel.
func BenchmarkPodLabelChange(b *testing.B) {
	k, _ := kernelNS(b)
	in := benchWorld()
	if _, err := k.apply(Translate(in)); err != nil {
		b.Fatal(err)
	}
	pod := in.Pods[0]
	for b.Loop() {
		if pod.Labels["zone"] == "prod" {
			pod.Labels["zone"] = "staging"
		} else {
			pod.Labels["zone"] = "prod"
		}
		incremental, err := k.apply(Translate(in))
		if err != nil {
			b.Fatal(err)
		}
		if !incremental {
			b.Fatal("not incremental")
		}
	}
}
