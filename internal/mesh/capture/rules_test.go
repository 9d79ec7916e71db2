package capture_test

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"skiff.dev/skiff/internal/errdefs"
	"skiff.dev/skiff/internal/mesh/capture"
	"skiff.dev/skiff/internal/mesh/meshconfig"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestRulesGolden renders the table for pods' annotations and compares
// it with testdata/<name>.golden.
func TestRulesGolden(t *testing.T) {
	cases := []struct {
		name        string
		annotations map[string]string
	}{
		{name: "default"},
		{name: "inbound-ports-include", annotations: map[string]string{meshconfig.IncludeInboundPorts: "8080, 9090"}},
		{name: "inbound-none", annotations: map[string]string{meshconfig.IncludeInboundPorts: ""}},
		{name: "inbound-exclude", annotations: map[string]string{meshconfig.ExcludeInboundPorts: "22,8443"}},
		{name: "outbound-exclude", annotations: map[string]string{
			meshconfig.ExcludeOutboundPorts: "5432,6379",
			meshconfig.ExcludeOutboundCIDRs: "169.254.169.254/32,10.96.0.0/12,fd00::/8",
		}},
		{name: "outbound-include", annotations: map[string]string{
			meshconfig.IncludeOutboundCIDRs: "10.96.0.0/12, 10.244.0.0/16",
			meshconfig.ExcludeOutboundCIDRs: "10.96.0.10",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			spec, err := capture.SpecFor(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Annotations: tc.annotations}})
			if err != nil {
				t.Fatal(err)
			}
			got := capture.Rules(spec).String()
			path := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("rules differ from %s (-update rewrites it):\n%s", path, got)
			}
		})
	}
}

func podWith(annotations map[string]string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Annotations: annotations}}
}

func TestSpecForRejects(t *testing.T) {
	for _, a := range []map[string]string{
		{meshconfig.IncludeInboundPorts: "http"},
		{meshconfig.ExcludeInboundPorts: "70000"},
		{meshconfig.ExcludeOutboundPorts: "0"},
		{meshconfig.ExcludeOutboundCIDRs: "10.0.0.0/33"},
		{meshconfig.IncludeOutboundCIDRs: "nowhere"},
	} {
		_, err := capture.SpecFor(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Annotations: a}})
		if !errors.Is(err, errdefs.ErrInvalid) {
			t.Errorf("%v: err %v, want invalid", a, err)
		}
	}
}
