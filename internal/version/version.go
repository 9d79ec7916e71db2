// Package version says which Skiff this is and which Kubernetes version it
// speaks. Version is set at link time (see Makefile); the Kubernetes
// version follows the k8s.io libraries in go.mod.
package version

import (
	"fmt"
	"runtime"
	"strings"

	apimachineryversion "k8s.io/apimachinery/pkg/version"
)

// Version of Skiff, set with -ldflags "-X skiff.dev/skiff/internal/version.Version=...".
var Version = "0.1.0-dev"

// Kubernetes is the Kubernetes release whose API Skiff serves and whose
// kubectl it embeds.
const Kubernetes = "v1.37.2"

// LDFlags are the linker flags a build needs so that the embedded kubectl
// reports the right client version. The Makefile and the test harness
// both use them.
func LDFlags(skiffVersion string) string {
	major, minor := k8sMajorMinor()
	pkg := "k8s.io/component-base/version"
	return strings.Join([]string{
		"-X " + pkg + ".gitVersion=" + Kubernetes,
		"-X " + pkg + ".gitMajor=" + major,
		"-X " + pkg + ".gitMinor=" + minor,
		"-X " + pkg + ".gitTreeState=clean",
		"-X skiff.dev/skiff/internal/version.Version=" + skiffVersion,
	}, " ")
}

func k8sMajorMinor() (string, string) {
	parts := strings.SplitN(strings.TrimPrefix(Kubernetes, "v"), ".", 3)
	return parts[0], parts[1]
}

// Info is what the API server's /version answers: the Kubernetes version
// with Skiff's as build metadata, like k3s's "v1.30.2+k3s1".
func Info() apimachineryversion.Info {
	major, minor := k8sMajorMinor()
	return apimachineryversion.Info{
		Major:        major,
		Minor:        minor,
		GitVersion:   Kubernetes + "+skiff." + strings.ReplaceAll(Version, "+", "."),
		GitTreeState: "clean",
		GoVersion:    runtime.Version(),
		Compiler:     runtime.Compiler,
		Platform:     fmt.Sprintf("%s/%s", runtime.GOOS, runtime.GOARCH),
	}
}
