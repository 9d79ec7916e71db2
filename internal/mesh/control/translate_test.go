package control

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
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
	snap, pod, err := parseSnapshot(data)
	if err != nil {
		t.Fatal(err)
	}
	return snap, pod
}

func parseSnapshot(data []byte) (snap *Snapshot, proxyPod *corev1.Pod, err error) {
	snap = &Snapshot{}
	fail := func(format string, args ...any) { panic(fmt.Errorf(format, args...)) }
	defer func() {
		if r := recover(); r != nil {
			e, ok := r.(error)
			if !ok {
				panic(r)
			}
			snap, proxyPod, err = nil, nil, e
		}
	}()
	for i, doc := range strings.Split(string(data), "\n---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		js, err := yaml.YAMLToJSON([]byte(doc))
		if err != nil {
			fail("document %d: %v", i, err)
		}
		var meta struct{ Kind string }
		if err := json.Unmarshal(js, &meta); err != nil {
			fail("document %d: %v", i, err)
		}
		into := func(v any) {
			if err := json.Unmarshal(js, v); err != nil {
				fail("document %d (%s): %v", i, meta.Kind, err)
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
		case "Gateway":
			o := &networkingv1.Gateway{}
			into(o)
			snap.Gateways = append(snap.Gateways, o)
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
			fail("document %d: unknown kind %q", i, meta.Kind)
		}
	}
	if proxyPod == nil {
		fail("no pod annotated %s: \"true\"", proxyAnnotation)
	}
	return snap, proxyPod, nil
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
			opts := MeshOptions{}
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
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the translation (run with -update and review the diff):\n%s", golden, firstDiff(want, got))
			}
			var explained bytes.Buffer
			Explain(&explained, doc, warnings)
			explainFile := strings.TrimSuffix(file, ".yaml") + ".explain.txt"
			if *update {
				if err := os.WriteFile(explainFile, explained.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			} else if want, err := os.ReadFile(explainFile); err != nil || !bytes.Equal(want, explained.Bytes()) {
				t.Errorf("%s differs from Explain's output (run with -update): %v", explainFile, err)
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

// TestEncodeMatchesJSON checks that the shared-cluster encoding is the
// standard one: the wire types mirror the contract's.
func TestEncodeMatchesJSON(t *testing.T) {
	data, err := os.ReadFile("testdata/routing.yaml")
	if err != nil {
		t.Fatal(err)
	}
	snap, pod := loadSnapshot(t, data)
	doc, body, _ := NewIndex(snap, MeshOptions{}).TranslateJSON(pod, testIdentity)
	want, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(body, want) {
		t.Fatalf("encodings differ:\n%s", firstDiff(bytes.ReplaceAll(want, []byte(","), []byte(",\n")), bytes.ReplaceAll(body, []byte(","), []byte(",\n"))))
	}
	if Version(doc) != doc.Version {
		t.Errorf("Version(doc) = %s, doc.Version = %s", Version(doc), doc.Version)
	}
}

// FuzzTranslate mutates the golden inputs: whatever parses must
// translate without a panic (Translate recovers from one, and says so in
// its warnings) into a document the proxy accepts.
func FuzzTranslate(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		snap, pod, err := parseSnapshot(data)
		if err != nil {
			return
		}
		doc, warnings := Translate(snap, pod, testIdentity, MeshOptions{})
		if doc == nil {
			t.Fatalf("translation failed: %v", warnings)
		}
		if err := compiles(&doc.Proxy); err != nil {
			t.Fatalf("the proxy rejects the document: %v", err)
		}
	})
}

// TestTranslateMutated is a deterministic cousin of FuzzTranslate: it
// deletes, duplicates and garbles lines of the golden inputs (a value
// replaced by one of a few troublesome ones) and checks that whatever
// still parses translates without a panic into a document the proxy
// accepts.
func TestTranslateMutated(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.yaml")
	values := []string{`""`, "-1", "0", "4294967296", `"*"`, `"a(b"`, "null", "{}", "[]", `"::1"`, `"10.0.0.0/33"`, "65536", `"*.x"`}
	rng := rand.New(rand.NewPCG(1, 2))
	parsed, translated := 0, 0
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(data), "\n")
		for range 150 {
			m := slices.Clone(lines)
			for range 1 + rng.IntN(3) {
				i := rng.IntN(len(m))
				switch rng.IntN(3) {
				case 0:
					m = slices.Delete(m, i, i+1)
				case 1:
					m = slices.Insert(m, i, m[i])
				default:
					if k := strings.LastIndex(m[i], ": "); k > 0 {
						m[i] = m[i][:k+2] + values[rng.IntN(len(values))]
					}
				}
			}
			snap, pod, err := parseSnapshot([]byte(strings.Join(m, "\n")))
			if err != nil {
				continue
			}
			parsed++
			doc, warnings := Translate(snap, pod, testIdentity, MeshOptions{})
			if doc == nil {
				t.Fatalf("translation failed: %v\n%s", warnings, strings.Join(m, "\n"))
			}
			if err := compiles(&doc.Proxy); err != nil {
				t.Fatalf("the proxy rejects the document: %v\n%s", err, strings.Join(m, "\n"))
			}
			translated++
		}
	}
	t.Logf("%d mutated inputs parsed and translated", translated)
	if parsed == 0 {
		t.Fatal("no mutated input parsed")
	}
}

// TestGatewayGolden translates testdata/gateway.yaml.gw's Gateways for
// an edge proxy labelled like the annotated pod.
func TestGatewayGolden(t *testing.T) {
	data, err := os.ReadFile("testdata/gateway.yaml.gw")
	if err != nil {
		t.Fatal(err)
	}
	snap, pod := loadSnapshot(t, data)
	frag := NewIndex(snap, MeshOptions{}).Gateways(pod.Labels, pod.Namespace)
	cfg := &proxy.Config{Listeners: slices.Clone(frag.Listeners), RouteTables: frag.RouteTables, Clusters: frag.Clusters}
	for i := range cfg.Listeners {
		cfg.Listeners[i].Address = "127.0.0.1:0"
	}
	if err := compiles(cfg); err != nil {
		t.Errorf("the proxy rejects the fragment: %v", err)
	}
	got, err := json.MarshalIndent(frag, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, '\n')
	const golden = "testdata/gateway.golden.json"
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run with -update and review the diff):\n%s", golden, firstDiff(want, got))
	}
}
