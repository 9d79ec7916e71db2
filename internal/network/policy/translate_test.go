package policy

import (
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

var (
	testNode = "node-1"
	testDNS  = netip.MustParseAddr("10.244.0.1")
)

// loadInput reads the test world and a case's objects.
func loadInput(t testing.TB, files ...string) Input {
	t.Helper()
	in, err := readInput(files...)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func readInput(files ...string) (Input, error) {
	in := Input{NodeName: testNode, NodeDNS: []netip.Addr{testDNS}}
	for _, f := range append([]string{"world.yaml"}, files...) {
		data, err := os.ReadFile(filepath.Join("testdata", f))
		if err != nil {
			return in, err
		}
		for _, doc := range splitYAML(data) {
			obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(doc, nil, nil)
			if err != nil {
				return in, fmt.Errorf("%s: %w", f, err)
			}
			switch o := obj.(type) {
			case *corev1.Namespace:
				in.Namespaces = append(in.Namespaces, o)
			case *corev1.Pod:
				in.Pods = append(in.Pods, o)
			case *networkingv1.NetworkPolicy:
				in.Policies = append(in.Policies, o)
			default:
				return in, fmt.Errorf("%s: unexpected %T", f, obj)
			}
		}
		if f == "shared-address.yaml" {
			markTerminating(in.Pods, "shop", "web-1")
		}
	}
	return in, nil
}

func splitYAML(data []byte) [][]byte { return bytes.Split(data, []byte("\n---\n")) }

// The golden cases: testdata/NAME.yaml holds policies applied to
// testdata/world.yaml, testdata/NAME.golden the table they make.
var goldenCases = []struct{ name, what string }{
	{"deny-all-ingress", "podSelector {} with no rules isolates every local pod of the namespace"},
	{"allow-zone-prod", "podSelector peer: same namespace only"},
	{"namespace-selector", "namespaceSelector peer: all pods of matching namespaces"},
	{"pod-and-namespace", "both selectors in one peer (AND) beside a second peer (OR), with a port"},
	{"ipblock-except", "ipBlock with except as interval sets, ingress and egress"},
	{"named-ports", "named ports resolved per destination pod, ingress and egress"},
	{"end-port", "endPort ranges, UDP, SCTP, protocol without port"},
	{"egress-deny-except-dns", "egress isolation with DNS allowed; the node DNS as kube-dns pod"},
	{"allow-all", "empty rules allow everything in both directions"},
	{"multiple-policies", "pods selected by the same policies share a dispatch chain"},
	{"bad-input", "invalid peers and ports match nothing and never panic"},
	{"shared-address", "a terminating pod's address belongs to the live pod holding it"},
	{"none", "no policies: empty maps, nothing isolated"},
}

func TestTranslateGolden(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			var files []string
			if tc.name != "none" {
				files = append(files, tc.name+".yaml")
			}
			got := Translate(loadInput(t, files...)).String()
			golden := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("%s: table differs from %s (run with -update to accept):\n%s", tc.what, golden, diffLines(string(want), got))
			}
		})
	}
}

// TestTranslateIsDeterministic: the input's order never changes the table.
func TestTranslateIsDeterministic(t *testing.T) {
	in := loadInput(t, "named-ports.yaml", "multiple-policies.yaml", "ipblock-except.yaml", "egress-deny-except-dns.yaml")
	want := Translate(in).String()
	r := rand.New(rand.NewPCG(1, 2))
	for range 20 {
		r.Shuffle(len(in.Pods), func(i, j int) { in.Pods[i], in.Pods[j] = in.Pods[j], in.Pods[i] })
		r.Shuffle(len(in.Policies), func(i, j int) { in.Policies[i], in.Policies[j] = in.Policies[j], in.Policies[i] })
		r.Shuffle(len(in.Namespaces), func(i, j int) { in.Namespaces[i], in.Namespaces[j] = in.Namespaces[j], in.Namespaces[i] })
		if got := Translate(in).String(); got != want {
			t.Fatalf("shuffled input gives another table:\n%s", diffLines(want, got))
		}
	}
}

func markTerminating(pods []*corev1.Pod, ns, name string) {
	for _, p := range pods {
		if p.Namespace == ns && p.Name == name {
			p.DeletionTimestamp = &metav1.Time{Time: time.Date(2026, 1, 2, 0, 0, 0, 0, time.UTC)}
		}
	}
}

// diffLines shows the lines only one side has.
func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for _, l := range w {
		if !slices.Contains(g, l) {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range g {
		if !slices.Contains(w, l) {
			b.WriteString("+ " + l + "\n")
		}
	}
	return b.String()
}
