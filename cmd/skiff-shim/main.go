// Command skiff-shim is the small binary of Skiff's container runtime. It
// is started in two roles:
//
//	skiff-shim shim --id ID --state DIR --bundle DIR --log FILE [...]
//	    the long-lived shim of one container (package shim)
//	skiff-shim init
//	    libcontainer's container init, re-executed by the shim through
//	    /proc/self/exe for every container and exec process
//
// It is kept apart from the skiff binary because both roles start often
// and live long: its imports are the standard library, libcontainer and
// Skiff's small runtime packages only (check with `go list -deps`).
package main

import (
	"fmt"
	"os"

	_ "github.com/opencontainers/cgroups/devices" // device rules for cgroup managers
	"github.com/opencontainers/runc/libcontainer"
	_ "github.com/opencontainers/runc/libcontainer/nsenter" // runs before the Go runtime in "init"

	"skiff.dev/skiff/internal/runtime/shim"
)

func init() {
	if len(os.Args) > 1 && os.Args[1] == "init" {
		// libcontainer's init: after nsenter's nsexec() set up the
		// namespaces, this configures the container and execs its
		// program. It does not return.
		libcontainer.Init()
	}
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	switch os.Args[1] {
	case "shim":
		os.Exit(shim.Main(os.Args[2:]))
	default:
		usage()
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: skiff-shim shim --id ID --state DIR --bundle DIR --log FILE [--stdin] [--stdin-once] [--tty] [--hold]")
	os.Exit(2)
}
