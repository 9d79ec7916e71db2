package capture_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/vishvananda/netns"

	"skiff.dev/skiff/internal/mesh/capture"
	"skiff.dev/skiff/internal/runtime/runtimetest"
)

// BenchmarkInstall measures installing (replacing) a pod's capture
// table, what the agent does once per sandbox before its containers
// start.
func BenchmarkInstall(b *testing.B) {
	if os.Geteuid() != 0 || !runtimetest.InNetNS() {
		b.Skip("needs root (runs in a network namespace of its own)")
	}
	h, err := netns.Get()
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	path := fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), int(h))
	spec, err := capture.SpecFor(podWith(nil))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = capture.Remove(path) })
	for b.Loop() {
		if err := capture.Install(path, spec); err != nil {
			b.Fatal(err)
		}
	}
}
