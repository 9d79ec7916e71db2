package fromistio

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	"sigs.k8s.io/yaml"

	"skiff.dev/skiff/internal/mesh/authz"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// workload is a test case's first document: the workload the policies
// are computed for.
type workload struct {
	Kind          string            `json:"kind"`
	Namespace     string            `json:"namespace"`
	Labels        map[string]string `json:"labels"`
	RootNamespace string            `json:"rootNamespace"`
}

// golden is what a case produces.
type golden struct {
	Authz  authz.Config `json:"authz"`
	Errors []string     `json:"errors,omitempty"`
	Peer   PeerModes    `json:"peer"`
}

func load(t *testing.T, path string) (workload, []*securityv1.AuthorizationPolicy, []*securityv1.RequestAuthentication, []*securityv1.PeerAuthentication) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var (
		w   workload
		aps []*securityv1.AuthorizationPolicy
		ras []*securityv1.RequestAuthentication
		pas []*securityv1.PeerAuthentication
	)
	for i, doc := range strings.Split(string(b), "\n---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var head struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("document %d: %v", i, err)
		}
		var obj any
		switch head.Kind {
		case "Workload":
			obj = &w
		case "AuthorizationPolicy":
			ap := &securityv1.AuthorizationPolicy{}
			aps, obj = append(aps, ap), ap
		case "RequestAuthentication":
			ra := &securityv1.RequestAuthentication{}
			ras, obj = append(ras, ra), ra
		case "PeerAuthentication":
			pa := &securityv1.PeerAuthentication{}
			pas, obj = append(pas, pa), pa
		default:
			t.Fatalf("document %d: unknown kind %q", i, head.Kind)
		}
		if err := yaml.UnmarshalStrict([]byte(doc), obj); err != nil {
			t.Fatalf("document %d (%s): %v", i, head.Kind, err)
		}
	}
	if w.Kind == "" {
		t.Fatal("no Workload document")
	}
	return w, aps, ras, pas
}

func TestGolden(t *testing.T) {
	files, err := filepath.Glob("testdata/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no test cases: %v", err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yaml")
		t.Run(name, func(t *testing.T) {
			w, aps, ras, pas := load(t, f)
			cfg, errs := ForWorkload(w.Namespace, w.Labels, w.RootNamespace, aps, ras)
			g := golden{Authz: cfg, Peer: PeerAuthentication(w.Namespace, w.Labels, w.RootNamespace, pas)}
			for _, e := range errs {
				g.Errors = append(g.Errors, e.Error())
			}
			// Whatever is translated must be enforceable.
			if _, err := authz.New(cfg, nil); err != nil {
				t.Errorf("authz.New: %v", err)
			}
			got, err := json.MarshalIndent(g, "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			goldenPath := filepath.Join("testdata", name+".golden.json")
			if *update {
				if err := os.WriteFile(goldenPath, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(goldenPath)
			if errors.Is(err, os.ErrNotExist) {
				t.Fatalf("%s missing: run go test -update", goldenPath)
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", goldenPath, got, want)
			}
		})
	}
}
