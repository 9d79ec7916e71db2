package istio

import (
	"encoding/json"
	"os"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"
)

// BenchmarkDecodeValidate is the admission cost of the workshop's reviews
// VirtualService: PreDecode, decoding, defaults and validation.
func BenchmarkDecodeValidate(b *testing.B) {
	s := newScheme(b)
	raw, err := os.ReadFile("testdata/networking.yaml")
	if err != nil {
		b.Fatal(err)
	}
	first, _, _ := splitDoc(raw)
	data, err := yaml.YAMLToJSON(first)
	if err != nil {
		b.Fatal(err)
	}
	gk := schema.GroupKind{Group: NetworkingGroup, Kind: "VirtualService"}
	b.ReportAllocs()
	for b.Loop() {
		out, _, err := PreDecode(s, gk, data)
		if err != nil {
			b.Fatal(err)
		}
		obj, _ := s.New(gk.WithVersion(StorageVersion))
		if err := json.Unmarshal(out, obj); err != nil {
			b.Fatal(err)
		}
		obj.(metav1.Object).SetNamespace("default")
		Default(obj)
		if errs := ValidateCreate(obj); len(errs) > 0 {
			b.Fatal(errs)
		}
	}
}

// splitDoc returns the first YAML document of a multi-document file.
func splitDoc(b []byte) (first, rest []byte, ok bool) {
	for i := 0; i+4 <= len(b); i++ {
		if string(b[i:i+4]) == "\n---" {
			return b[:i+1], b[i+4:], true
		}
	}
	return b, nil, false
}
