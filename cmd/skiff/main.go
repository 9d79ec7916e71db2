// Command skiff is the single Skiff binary. Invoked as "kubectl" (a
// symlink) it is kubectl; otherwise it dispatches to its subcommands.
package main

import (
	"context"
	"os"
	"path/filepath"

	"skiff.dev/skiff/internal/cli"
)

func main() {
	if filepath.Base(os.Args[0]) == "kubectl" {
		os.Exit(cli.RunKubectl(os.Args[1:]))
	}
	os.Exit(cli.Execute(context.Background(), os.Args[1:]))
}
