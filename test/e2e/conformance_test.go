package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"skiff.dev/skiff/internal/testenv"
)

// conformanceVersion pins the OCI distribution-spec conformance suite
// (github.com/opencontainers/distribution-spec/conformance), fetched
// through the Go module proxy and built here.
const conformanceVersion = "v0.0.0-20260831232431-97274622c111"

// TestDistributionConformance runs the OCI distribution-spec conformance
// suite (pull, push, content discovery, content management) against the
// embedded registry of a running server, sha512 content included. Checks
// the suite leaves off by default stay off: upload cancel, sparse
// manifests, tag parameters (optional features); anonymous cross-repo
// mount is answered 202 (the suite then falls back to a push and marks it
// skipped), as distribution does.
func TestDistributionConformance(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the conformance suite in -short mode")
	}
	suite := buildConformance(t)
	reg := testenv.FreePort(t)
	testenv.StartProcess(t, t.TempDir(), testenv.FreePort(t), "--registry-listen", reg)
	results := t.TempDir()
	cmd := exec.Command(suite)
	cmd.Dir = results
	cmd.Env = append(os.Environ(),
		"OCI_REGISTRY="+reg, "OCI_TLS=disabled", "OCI_VERSION=1.1", "OCI_RESULTS_DIR="+results,
		"OCI_LOG=error", "OCI_REPO1=conformance/repo1", "OCI_REPO2=conformance/repo2")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("conformance suite failed: %v\n%s", err, failing(string(out)))
	}
	if !strings.Contains(string(out), "OCI Conformance Test: Pass") {
		t.Fatalf("no passing verdict:\n%s", out)
	}
}

// failing keeps the lines of the report that name failures.
func failing(out string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "FAIL") || strings.Contains(l, "rror") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// buildConformance downloads the pinned suite and compiles its test
// binary once per test process.
func buildConformance(t *testing.T) string {
	t.Helper()
	dl := exec.Command("go", "mod", "download", "-json", "github.com/opencontainers/distribution-spec/conformance@"+conformanceVersion)
	out, err := dl.Output()
	if err != nil {
		t.Skipf("skipping: cannot download the conformance suite through the Go module proxy: %v", err)
	}
	var mod struct{ Dir string }
	if err := json.Unmarshal(out, &mod); err != nil || mod.Dir == "" {
		t.Fatalf("go mod download: %v\n%s", err, out)
	}
	src := filepath.Join(t.TempDir(), "conformance")
	if out, err := exec.Command("cp", "-r", mod.Dir, src).CombinedOutput(); err != nil {
		t.Fatalf("copy suite: %v\n%s", err, out)
	}
	exec.Command("chmod", "-R", "u+w", src).Run()
	bin := filepath.Join(t.TempDir(), "conformance.test")
	build := exec.Command("go", "test", "-c", "-o", bin, ".")
	build.Dir = src
	build.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build conformance suite: %v\n%s", err, out)
	}
	return bin
}
