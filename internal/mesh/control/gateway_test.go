package control

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	networkingapi "istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"skiff.dev/skiff/internal/mesh/proxy"
)

// loadGatewayCase reads a gateway case: Gateways and Secrets, the rest
// a Snapshot whose proxy pod describes the edge proxy's workload.
func loadGatewayCase(t testing.TB, data []byte) (*Snapshot, GatewayInput, GatewayOptions) {
	t.Helper()
	var in GatewayInput
	var rest []string
	for i, doc := range strings.Split(string(data), "\n---\n") {
		js, err := yaml.YAMLToJSON([]byte(doc))
		if err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		var meta struct{ Kind string }
		_ = json.Unmarshal(js, &meta)
		switch meta.Kind {
		case "Gateway":
			gw := &networkingv1.Gateway{}
			if err := json.Unmarshal(js, gw); err != nil {
				t.Fatalf("document %d: %v", i, err)
			}
			in.Gateways = append(in.Gateways, gw)
		case "Secret":
			s := &corev1.Secret{}
			if err := json.Unmarshal(js, s); err != nil {
				t.Fatalf("document %d: %v", i, err)
			}
			if s.Data == nil {
				s.Data = map[string][]byte{}
			}
			for k, v := range s.StringData {
				s.Data[k] = []byte(v)
			}
			in.Secrets = append(in.Secrets, s)
		default:
			rest = append(rest, doc)
		}
	}
	snap, pod := loadSnapshot(t, []byte(strings.Join(rest, "\n---\n")))
	return snap, in, GatewayOptions{Labels: pod.Labels, Namespace: pod.Namespace}
}

// TestGatewayGolden translates every testdata/gateway/*.yaml case and
// compares the fragment and warnings with its .golden.json (-update
// rewrites them); the proxy must accept the fragment.
func TestGatewayGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/gateway/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no cases: %v", err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			snap, in, gopts := loadGatewayCase(t, data)
			cfg, warnings := TranslateGateway(snap, in, MeshOptions{}, gopts)
			if cfg == nil {
				t.Fatalf("no fragment: %v", warnings)
			}
			// The proxy accepts it, listeners included (moved to
			// loopback port 0: Update only binds while running).
			check := *cfg
			if err := proxy.New(proxy.Options{}).Update(&check); err != nil {
				t.Errorf("the proxy rejects the fragment: %v", err)
			}
			// PEM blocks are long and say nothing: name their size.
			shown := *cfg
			shown.Certificates = nil
			for _, c := range cfg.Certificates {
				c.CertPEM = []byte("<certificate>")
				c.KeyPEM = []byte("<key>")
				shown.Certificates = append(shown.Certificates, c)
			}
			got, err := json.MarshalIndent(struct {
				Warnings []string      `json:"warnings"`
				Config   *proxy.Config `json:"config"`
			}{warnings, &shown}, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			golden := strings.TrimSuffix(file, ".yaml") + ".golden.json"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the translation (run with -update and review the diff):\n%s", golden, firstDiff(want, got))
			}
		})
	}
}

// TestGatewayOddInput feeds objects a user could write (or a broken
// client could send) and checks that the translation neither panics nor
// produces a configuration the proxy rejects.
func TestGatewayOddInput(t *testing.T) {
	gw := func(servers ...*networkingapi.Server) *networkingv1.Gateway {
		return &networkingv1.Gateway{ObjectMeta: metav1.ObjectMeta{Name: "gw", Namespace: "istio-system"},
			Spec: networkingapi.Gateway{Servers: servers}}
	}
	vs := func(hosts, gateways []string, http ...*networkingapi.HTTPRoute) *networkingv1.VirtualService {
		return &networkingv1.VirtualService{ObjectMeta: metav1.ObjectMeta{Name: "vs", Namespace: "default"},
			Spec: networkingapi.VirtualService{Hosts: hosts, Gateways: gateways, Http: http}}
	}
	port := func(n uint32, proto string) *networkingapi.Port {
		return &networkingapi.Port{Number: n, Protocol: proto}
	}
	for _, tc := range []struct {
		name string
		gws  []*networkingv1.Gateway
		vses []*networkingv1.VirtualService
	}{
		{name: "nothing"},
		{name: "nil gateway and nil server", gws: []*networkingv1.Gateway{nil, gw(nil)}},
		{name: "no port", gws: []*networkingv1.Gateway{gw(&networkingapi.Server{Hosts: []string{"*"}})}},
		{name: "port out of range", gws: []*networkingv1.Gateway{gw(&networkingapi.Server{Port: port(70000, "HTTP"), Hosts: []string{"*"}})}},
		{name: "no hosts", gws: []*networkingv1.Gateway{gw(&networkingapi.Server{Port: port(80, "HTTP")})}},
		{name: "odd hosts", gws: []*networkingv1.Gateway{gw(&networkingapi.Server{Port: port(80, "http"), Hosts: []string{"/", "ns/", "", "a/b/c", "*."}})},
			vses: []*networkingv1.VirtualService{vs([]string{"", "*", "*."}, []string{"istio-system/gw", "/", ""})}},
		{name: "https without tls", gws: []*networkingv1.Gateway{gw(&networkingapi.Server{Port: port(443, "HTTPS"), Hosts: []string{"*"}})}},
		{name: "nil routes and matches", gws: []*networkingv1.Gateway{gw(&networkingapi.Server{Port: port(80, "HTTP"), Hosts: []string{"*"}})},
			vses: []*networkingv1.VirtualService{nil, vs([]string{"*"}, []string{"istio-system/gw"}, nil,
				&networkingapi.HTTPRoute{Match: []*networkingapi.HTTPMatchRequest{nil}},
				&networkingapi.HTTPRoute{Route: []*networkingapi.HTTPRouteDestination{nil, {Destination: &networkingapi.Destination{}}}},
				&networkingapi.HTTPRoute{Match: []*networkingapi.HTTPMatchRequest{{Uri: &networkingapi.StringMatch{}}},
					Route: []*networkingapi.HTTPRouteDestination{{Destination: &networkingapi.Destination{Host: "nowhere"}}}},
			)}},
		{name: "bad regex", gws: []*networkingv1.Gateway{gw(&networkingapi.Server{Port: port(80, "HTTP"), Hosts: []string{"*"}})},
			vses: []*networkingv1.VirtualService{vs([]string{"*"}, []string{"istio-system/gw"}, &networkingapi.HTTPRoute{
				Match: []*networkingapi.HTTPMatchRequest{{Uri: &networkingapi.StringMatch{MatchType: &networkingapi.StringMatch_Regex{Regex: "("}}}},
				Route: []*networkingapi.HTTPRouteDestination{{Destination: &networkingapi.Destination{Host: "x"}}}})}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			snap := &Snapshot{VirtualServices: tc.vses}
			cfg, warnings := TranslateGateway(snap, GatewayInput{Gateways: tc.gws}, MeshOptions{}, GatewayOptions{})
			if cfg == nil {
				t.Fatalf("no fragment: %v", warnings)
			}
			if err := proxy.New(proxy.Options{}).Update(cfg); err != nil {
				t.Errorf("the proxy rejects the fragment: %v (warnings %q)", err, warnings)
			}
		})
	}
}
