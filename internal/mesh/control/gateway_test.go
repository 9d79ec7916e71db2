package control

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
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
			cfg, warnings := TranslateGateway(snap, in, Options{}, gopts)
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
