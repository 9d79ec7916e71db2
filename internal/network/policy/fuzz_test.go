package policy

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	"sigs.k8s.io/yaml"
)

// FuzzTranslate: no policy a user can send makes Translate or rendering
// panic, and an unparsable one is simply skipped by the API server.
func FuzzTranslate(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		for _, doc := range splitYAML(data) {
			if j, err := yaml.YAMLToJSON(doc); err == nil {
				f.Add(j)
			}
		}
	}
	world, err := readInput()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var np networkingv1.NetworkPolicy
		if json.Unmarshal(data, &np) != nil {
			return
		}
		in := world
		np.Namespace = "shop"
		in.Policies = []*networkingv1.NetworkPolicy{&np}
		_ = Translate(in).String()
	})
}
