package proxy

import (
	"bytes"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/scheme"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenConfig is the node of the golden files: node1 in zone-a, pods in
// 10.244.0.0/16.
func goldenConfig() *config {
	return &config{
		table: DefaultTable, nodeName: "node1", zone: "zone-a",
		podCIDR:     netip.MustParsePrefix("10.244.0.0/16"),
		serviceCIDR: netip.MustParsePrefix(DefaultServiceCIDR),
	}
}

// objects are a golden case's input.
type objects struct {
	services []*corev1.Service
	slices   []*discoveryv1.EndpointSlice
}

// loadObjects decodes a multi-document YAML file of Services and
// EndpointSlices.
func loadObjects(t *testing.T, path string) objects {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var o objects
	for _, doc := range strings.Split(string(b), "\n---\n") {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode([]byte(doc), nil, nil)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		switch x := obj.(type) {
		case *corev1.Service:
			o.services = append(o.services, x)
		case *discoveryv1.EndpointSlice:
			o.slices = append(o.slices, x)
		default:
			t.Fatalf("%s: unexpected %T", path, obj)
		}
	}
	return o
}

func stripComments(doc string) string {
	var keep []string
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// translateAll is what the Proxy computes from its caches.
func (o objects) translateAll(cfg *config) map[types.NamespacedName]*serviceRules {
	out := map[types.NamespacedName]*serviceRules{}
	for _, svc := range o.services {
		var sls []*discoveryv1.EndpointSlice
		for _, sl := range o.slices {
			if sl.Namespace == svc.Namespace && sl.Labels[discoveryv1.LabelServiceName] == svc.Name {
				sls = append(sls, sl)
			}
		}
		if sr := translateService(svc, sls, cfg); sr != nil {
			out[types.NamespacedName{Namespace: svc.Namespace, Name: svc.Name}] = sr
		}
	}
	return out
}

func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if d := cmp.Diff(string(want), string(got)); d != "" {
		t.Errorf("%s differs (-want +got; -update rewrites it):\n%s", path, d)
	}
}

// TestGolden translates each testdata/<case>.yaml and compares the
// Services' part of the table with testdata/<case>.golden.
func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(inputs) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".yaml")
		t.Run(name, func(t *testing.T) {
			cfg := goldenConfig()
			var buf bytes.Buffer
			render(&buf, cfg, loadObjects(t, in).translateAll(cfg), false)
			checkGolden(t, filepath.Join("testdata", name+".golden"), buf.Bytes())
		})
	}
}

// TestGoldenFixed checks the fixed part of the table: sets, hooks and
// dispatch, for every local address and for NodePortAddresses.
func TestGoldenFixed(t *testing.T) {
	tests := []struct {
		name   string
		adjust func(*config)
	}{
		{"fixed", func(*config) {}},
		{"fixed-nodeport-addresses", func(c *config) {
			c.nodePortCIDRs = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("198.51.100.10/32")}
			c.serviceCIDR = netip.Prefix{}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := goldenConfig()
			tt.adjust(cfg)
			var buf bytes.Buffer
			render(&buf, cfg, nil, true)
			checkGolden(t, filepath.Join("testdata", tt.name+".golden"), buf.Bytes())
		})
	}
}
