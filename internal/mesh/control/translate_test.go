package control

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"sigs.k8s.io/yaml"

	"skiff.dev/skiff/internal/mesh/proxy"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// proxyAnnotation marks the pod whose sidecar a golden case translates.
const proxyAnnotation = "test.skiff.dev/proxy"

// loadSnapshot reads a multi-document YAML file of API objects.
func loadSnapshot(t testing.TB, data []byte) (*Snapshot, *corev1.Pod) {
	t.Helper()
	snap := &Snapshot{}
	var proxyPod *corev1.Pod
	for i, doc := range strings.Split(string(data), "\n---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		js, err := yaml.YAMLToJSON([]byte(doc))
		if err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		var meta struct{ Kind string }
		if err := json.Unmarshal(js, &meta); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		into := func(v any) {
			if err := json.Unmarshal(js, v); err != nil {
				t.Fatalf("document %d (%s): %v", i, meta.Kind, err)
			}
		}
		switch meta.Kind {
		case "Service":
			o := &corev1.Service{}
			into(o)
			snap.Services = append(snap.Services, o)
		case "EndpointSlice":
			o := &discoveryv1.EndpointSlice{}
			into(o)
			snap.EndpointSlices = append(snap.EndpointSlices, o)
		case "Pod":
			o := &corev1.Pod{}
			into(o)
			snap.Pods = append(snap.Pods, o)
			if o.Annotations[proxyAnnotation] == "true" {
				proxyPod = o
			}
		case "Namespace":
			o := &corev1.Namespace{}
			into(o)
			snap.Namespaces = append(snap.Namespaces, o)
		case "VirtualService":
			o := &networkingv1.VirtualService{}
			into(o)
			snap.VirtualServices = append(snap.VirtualServices, o)
		case "DestinationRule":
			o := &networkingv1.DestinationRule{}
			into(o)
			snap.DestinationRules = append(snap.DestinationRules, o)
		case "ServiceEntry":
			o := &networkingv1.ServiceEntry{}
			into(o)
			snap.ServiceEntries = append(snap.ServiceEntries, o)
		case "Sidecar":
			o := &networkingv1.Sidecar{}
			into(o)
			snap.Sidecars = append(snap.Sidecars, o)
		case "PeerAuthentication":
			o := &securityv1.PeerAuthentication{}
			into(o)
			snap.PeerAuthentications = append(snap.PeerAuthentications, o)
		case "AuthorizationPolicy":
			o := &securityv1.AuthorizationPolicy{}
			into(o)
			snap.AuthorizationPolicies = append(snap.AuthorizationPolicies, o)
		case "RequestAuthentication":
			o := &securityv1.RequestAuthentication{}
			into(o)
			snap.RequestAuthentications = append(snap.RequestAuthentications, o)
		default:
			t.Fatalf("document %d: unknown kind %q", i, meta.Kind)
		}
	}
	if proxyPod == nil {
		t.Fatalf("no pod annotated %s: \"true\"", proxyAnnotation)
	}
	return snap, proxyPod
}

var testIdentity = &proxy.Identity{CertPEM: []byte("CERT"), KeyPEM: []byte("KEY"), RootsPEM: []byte("ROOTS")}

// TestTranslateGolden translates every testdata/*.yaml case and compares
// the document and warnings with testdata/*.golden.json (-update
// rewrites them). It also checks that the proxy accepts the document.
func TestTranslateGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yaml")
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
			snap, pod := loadSnapshot(t, data)
			opts := Options{}
			if strings.Contains(name, "registry-only") {
				opts.Outbound = RegistryOnly
			}
			doc, warnings := Translate(snap, pod, testIdentity, opts)
			if doc == nil {
				t.Fatalf("no document: %v", warnings)
			}
			if err := compiles(&doc.Proxy); err != nil {
				t.Errorf("the proxy rejects the document: %v", err)
			}
			got, err := json.MarshalIndent(struct {
				Warnings []string `json:"warnings"`
				Sidecar  any      `json:"sidecar"`
			}{warnings, doc}, "", "  ")
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
			// Deterministic: the same input gives the same version.
			again, _ := Translate(snap, pod, testIdentity, opts)
			if again.Version != doc.Version {
				t.Errorf("version not stable: %s then %s", doc.Version, again.Version)
			}
		})
	}
}

func firstDiff(want, got []byte) string {
	wl, gl := strings.Split(string(want), "\n"), strings.Split(string(got), "\n")
	for i := range max(len(wl), len(gl)) {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			return fmt.Sprintf("line %d:\n want %s\n  got %s", i+1, w, g)
		}
	}
	return ""
}

// compiles checks that the proxy accepts cfg's route tables and
// clusters (capture listeners are left out: the proxy in this tree may
// not know them yet).
func compiles(cfg *proxy.Config) error {
	c := *cfg
	c.Listeners = nil
	c.Identity = nil
	// Consistent hashing is the proxy's to implement; the proxy in this
	// tree may not know it yet.
	c.Clusters = slices.Clone(c.Clusters)
	for i := range c.Clusters {
		if c.Clusters[i].LB == proxy.LBConsistentHash {
			c.Clusters[i].LB, c.Clusters[i].Hash = "", nil
		}
	}
	return proxy.New(proxy.Options{}).Update(&c)
}
