package policy

import (
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"skiff.dev/skiff/internal/network/netns"
	"skiff.dev/skiff/internal/runtime/runtimetest"
)

// requireLab skips unless the test can make network namespaces and
// nftables tables: as root, in the namespace of its own that TestMain
// (lab_test.go) re-executes the test binary in.
func requireLab(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces, a bridge and nftables tables")
	}
	if !runtimetest.InNetNS() {
		t.Skip("needs its own network namespace (unshare from util-linux)")
	}
}

// kernelNS makes a network namespace for a table and returns a kernel
// programming it.
func kernelNS(t testing.TB) (*kernel, string) {
	t.Helper()
	requireLab(t)
	path := filepath.Join(t.TempDir(), "ns")
	if err := netns.Create(path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = netns.Delete(path) })
	f, err := netns.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	// A debug logger to the test's log, as testenv.Logger (which this package's
	// internal tests cannot import: testenv imports the daemon, which imports
	// this package).
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	return newKernel(DefaultTable, int(f.Fd()), log), path
}

// listTable is `nft list table` in ns, normalized so that equal contents
// list equal: blocks sorted by name, set elements sorted.
func listTable(t testing.TB, ns string) string {
	t.Helper()
	var out []byte
	err := netns.Do(ns, func() (err error) {
		out, err = exec.Command("nft", "list", "table", "ip", DefaultTable).CombinedOutput()
		return err
	})
	if err != nil {
		t.Fatalf("nft list table: %v\n%s", err, out)
	}
	return normalizeListing(string(out))
}

var elementsRE = regexp.MustCompile(`(?s)elements = \{(.*?)\}`)

func normalizeListing(s string) string {
	s = elementsRE.ReplaceAllStringFunc(s, func(m string) string {
		inner := elementsRE.FindStringSubmatch(m)[1]
		var items []string
		for _, it := range strings.Split(inner, ",") {
			items = append(items, strings.Join(strings.Fields(it), " "))
		}
		slices.Sort(items)
		return "elements = { " + strings.Join(items, ", ") + " }"
	})
	var blocks []string
	var cur []string
	for _, line := range strings.Split(s, "\n") {
		switch {
		case strings.HasPrefix(line, "\t") && !strings.HasPrefix(line, "\t\t"):
			cur = append(cur, line)
			if line == "\t}" {
				blocks = append(blocks, strings.Join(cur, "\n"))
				cur = nil
			}
		case len(cur) > 0:
			cur = append(cur, line)
		}
	}
	slices.Sort(blocks)
	return strings.Join(blocks, "\n")
}

func TestKernelLoadsEveryCase(t *testing.T) {
	k, ns := kernelNS(t)
	for _, tc := range goldenCases {
		t.Run(tc.name, func(t *testing.T) {
			var files []string
			if tc.name != "none" {
				files = append(files, tc.name+".yaml")
			}
			rs := Translate(loadInput(t, files...))
			if err := k.replace(rs); err != nil {
				t.Fatal(err)
			}
			if os.Getenv("POLICY_SHOW_NFT") != "" {
				t.Log(listTable(t, ns))
			}
		})
	}
}

// kernelCases are the golden cases plus variants that change set
// elements, dispatch entries and named-port numbers under the same names.
func kernelCases(t *testing.T) map[string]*Ruleset {
	cases := map[string]*Ruleset{}
	for _, tc := range goldenCases {
		var files []string
		if tc.name != "none" {
			files = append(files, tc.name+".yaml")
		}
		cases[tc.name] = Translate(loadInput(t, files...))
	}
	relabel := func(base, name string, mutate func(in *Input)) {
		in := loadInput(t, base+".yaml")
		mutate(&in)
		cases[base+"+"+name] = Translate(in)
	}
	relabel("allow-zone-prod", "web-2 prod", func(in *Input) {
		for _, p := range in.Pods {
			if p.Name == "web-2" {
				p.Labels["zone"] = "prod"
			}
		}
	})
	relabel("allow-zone-prod", "db gone", func(in *Input) {
		in.Pods = slices.DeleteFunc(in.Pods, func(p *corev1.Pod) bool { return p.Name == "db" })
	})
	relabel("named-ports", "web-2 on 8080", func(in *Input) {
		for _, p := range in.Pods {
			if p.Name == "web-2" {
				p.Spec.Containers[0].Ports[0].ContainerPort = 8080
			}
		}
	})
	relabel("multiple-policies", "dev relabelled", func(in *Input) {
		for _, ns := range in.Namespaces {
			if ns.Name == "dev" {
				ns.Labels["team"] = "qa"
			}
		}
	})
	// Names at the API's limits and a selector far longer than a comment.
	in := loadInput(t)
	ns, name := strings.Repeat("n", 63), strings.Repeat("p", 253)
	var values []string
	for i := range 40 {
		values = append(values, fmt.Sprintf("value-%02d", i))
	}
	in.Namespaces = append(in.Namespaces, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	in.Pods = append(in.Pods, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: ns},
		Spec:   corev1.PodSpec{NodeName: testNode},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.244.0.99"}})
	in.Policies = append(in.Policies, &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: networkingv1.NetworkPolicySpec{
			PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress},
			Ingress: []networkingv1.NetworkPolicyIngressRule{{From: []networkingv1.NetworkPolicyPeer{{
				PodSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
					{Key: "example.com/" + strings.Repeat("k", 63), Operator: metav1.LabelSelectorOpIn, Values: values}}},
			}}}},
			Egress: []networkingv1.NetworkPolicyEgressRule{{}},
		}})
	cases["long-names"] = Translate(in)
	return cases
}

// TestKernelIncremental: from any table to any other, the incremental
// batch leaves the kernel exactly as a fresh replace would.
func TestKernelIncremental(t *testing.T) {
	k, ns := kernelNS(t)
	cases := kernelCases(t)
	want := map[string]string{}
	for name, rs := range cases {
		if err := k.replace(rs); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		want[name] = listTable(t, ns)
	}
	names := slices.Sorted(maps.Keys(cases))
	for _, from := range names {
		for _, to := range names {
			if from == to {
				continue
			}
			if err := k.replace(cases[from]); err != nil {
				t.Fatalf("%s: %v", from, err)
			}
			if err := k.update(cases[from], cases[to]); err != nil {
				t.Errorf("%s -> %s: %v", from, to, err)
				continue
			}
			if got := listTable(t, ns); got != want[to] {
				t.Errorf("%s -> %s: table differs from a fresh one:\n%s", from, to, diffLines(want[to], got))
			}
		}
	}
}

// TestKernelApplyRecovers: when the table was changed behind the
// Enforcer's back, the failed incremental batch falls back to a replace.
func TestKernelApplyRecovers(t *testing.T) {
	k, ns := kernelNS(t)
	cases := kernelCases(t)
	if _, err := k.apply(cases["allow-zone-prod"]); err != nil {
		t.Fatal(err)
	}
	// Someone deletes the table behind the Enforcer's back.
	err := netns.Do(ns, func() error {
		out, err := exec.Command("nft", "delete", "table", "ip", DefaultTable).CombinedOutput()
		if err != nil {
			t.Logf("%s", out)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	incremental, err := k.apply(cases["allow-zone-prod+web-2 prod"])
	if err != nil {
		t.Fatal(err)
	}
	if incremental {
		t.Error("apply on a vanished table claims an incremental update")
	}
	if err := k.replace(cases["allow-zone-prod+web-2 prod"]); err != nil {
		t.Fatal(err)
	}
	want := listTable(t, ns)
	if _, err := k.apply(cases["allow-zone-prod+web-2 prod"]); err != nil {
		t.Fatal(err)
	}
	if got := listTable(t, ns); got != want {
		t.Errorf("after recovery:\n%s", diffLines(want, got))
	}
}

// TestKernelRemove: remove deletes our table only, and twice is fine.
func TestKernelRemove(t *testing.T) {
	k, ns := kernelNS(t)
	err := netns.Do(ns, func() error {
		return exec.Command("nft", "add", "table", "ip", "other").Run()
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := k.replace(Translate(loadInput(t, "allow-all.yaml"))); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := k.remove(); err != nil {
			t.Fatal(err)
		}
	}
	var out []byte
	_ = netns.Do(ns, func() (err error) {
		out, err = exec.Command("nft", "list", "tables").CombinedOutput()
		return err
	})
	if got := strings.TrimSpace(string(out)); got != "table ip other" {
		t.Errorf("tables after remove: %q, want only the other table", got)
	}
}
