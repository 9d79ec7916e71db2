package ingress

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"

	"skiff.dev/skiff/internal/mesh/proxy"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// memObjects is Objects over decoded YAML.
type memObjects struct {
	services map[string]*corev1.Service
	slices   map[string][]*discoveryv1.EndpointSlice // by namespace/service
	secrets  map[string]*corev1.Secret
}

func (m *memObjects) Service(ns, name string) (*corev1.Service, error) {
	if s := m.services[ns+"/"+name]; s != nil {
		return s, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "services"}, name)
}

func (m *memObjects) EndpointSlices(ns, svc string) ([]*discoveryv1.EndpointSlice, error) {
	return m.slices[ns+"/"+svc], nil
}

func (m *memObjects) Secret(ns, name string) (*corev1.Secret, error) {
	if s := m.secrets[ns+"/"+name]; s != nil {
		return s, nil
	}
	return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "secrets"}, name)
}

// load decodes a multi-document YAML file of Kubernetes objects.
func load(t *testing.T, path string) ([]*networkingv1.Ingress, *memObjects) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	objs := &memObjects{services: map[string]*corev1.Service{}, slices: map[string][]*discoveryv1.EndpointSlice{},
		secrets: map[string]*corev1.Secret{}}
	var ings []*networkingv1.Ingress
	dec := scheme.Codecs.UniversalDeserializer()
	for _, doc := range strings.Split(string(data), "\n---\n") {
		if strings.TrimSpace(stripComments(doc)) == "" {
			continue
		}
		obj, _, err := dec.Decode([]byte(doc), nil, nil)
		if err != nil {
			t.Fatalf("%s: %v in\n%s", path, err, doc)
		}
		switch o := obj.(type) {
		case *networkingv1.Ingress:
			ings = append(ings, o)
		case *corev1.Service:
			objs.services[o.Namespace+"/"+o.Name] = o
		case *discoveryv1.EndpointSlice:
			k := o.Namespace + "/" + o.Labels[discoveryv1.LabelServiceName]
			objs.slices[k] = append(objs.slices[k], o)
		case *corev1.Secret:
			if o.Data == nil {
				o.Data = map[string][]byte{}
			}
			for k, v := range o.StringData { // what the API server does
				o.Data[k] = []byte(v)
			}
			objs.secrets[o.Namespace+"/"+o.Name] = o
		default:
			t.Fatalf("%s: unexpected %T", path, obj)
		}
	}
	return ings, objs
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// render prints a Result for a golden file, certificates shown by
// fingerprint.
func render(t *testing.T, res Result) []byte {
	t.Helper()
	raw, err := json.Marshal(struct {
		Problems []Problem     `json:"problems"`
		Config   *proxy.Config `json:"config"`
	}{res.Problems, res.Config})
	if err != nil {
		t.Fatal(err)
	}
	var tree map[string]any
	if err := json.Unmarshal(raw, &tree); err != nil {
		t.Fatal(err)
	}
	if certs, ok := tree["config"].(map[string]any)["certificates"].([]any); ok {
		for i, c := range certs {
			m := c.(map[string]any)
			m["certPEM"] = fingerprint(res.Config.Certificates[i].CertPEM)
			delete(m, "keyPEM")
		}
	}
	out, err := yaml.Marshal(tree)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func fingerprint(pem []byte) string {
	sum := sha256.Sum256(pem)
	return "sha256:" + hex.EncodeToString(sum[:8])
}

func TestTranslateGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no test cases in testdata")
	}
	opts := TranslateOptions{HTTPAddr: ":80", HTTPSAddr: ":443",
		DefaultCertificate: proxy.Certificate{CertPEM: []byte("default-cert"), KeyPEM: []byte("default-key")}}
	for _, in := range files {
		name := strings.TrimSuffix(filepath.Base(in), ".yaml")
		t.Run(name, func(t *testing.T) {
			ings, objs := load(t, in)
			res := Translate(ings, objs, opts)
			got := render(t, res)
			golden := strings.TrimSuffix(in, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the golden file (-want +got):\n%s", name, cmp.Diff(string(want), string(got)))
			}
			// Whatever it produces, the proxy must accept (with real
			// certificates).
			res.Config.Certificates[0].CertPEM, res.Config.Certificates[0].KeyPEM = testDefaultCert(t)
			res.Config.Listeners[0].Address, res.Config.Listeners[1].Address = "127.0.0.1:0", "127.0.0.1:0"
			if err := proxy.New(proxy.Options{}).Update(res.Config); err != nil {
				t.Errorf("proxy rejects the translation: %v", err)
			}
		})
	}
}

func testDefaultCert(t *testing.T) ([]byte, []byte) {
	c, err := defaultCertificate(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return c.CertPEM, c.KeyPEM
}
