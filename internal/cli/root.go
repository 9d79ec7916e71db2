// Package cli defines Skiff's command line: flags and arguments here,
// actions in the packages the commands call.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"skiff.dev/skiff/internal/dockercli"
	"skiff.dev/skiff/internal/version"
)

// DefaultDataDir is where a server keeps its state unless told otherwise.
const DefaultDataDir = "/var/lib/skiff"

// NewRoot returns the `skiff` command with all its subcommands.
func NewRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "skiff",
		Short:         "Containers, Kubernetes and a service mesh in one binary",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	var logLevel string
	root.PersistentFlags().StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		var lvl slog.Level
		if err := lvl.UnmarshalText([]byte(logLevel)); err != nil {
			return fmt.Errorf("--log-level: %w", err)
		}
		slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})))
		return nil
	}
	root.AddCommand(newVersionCmd(), newServerCmd(), newEtcdCmd(), newEngineCmd(), newAgentCmd(), newKubectlCmd(), newBuildCmd(), newMeshCmd())
	root.AddCommand(newImageCmds()...)
	root.AddCommand(newRemoteCmds()...)
	root.AddCommand(dockercli.Commands(&dockercli.Options{})...)
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print Skiff's version and the Kubernetes version it serves",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			printVersion(cmd.OutOrStdout())
		},
	}
}

func printVersion(w io.Writer) {
	info := version.Info()
	fmt.Fprintf(w, "Skiff %s\nKubernetes API %s\nGo %s %s\n", version.Version, version.Kubernetes, info.GoVersion, info.Platform)
}

// Execute runs the command line and returns the process exit code.
func Execute(ctx context.Context, args []string) int {
	root := NewRoot()
	root.SetArgs(args)
	if err := root.ExecuteContext(ctx); err != nil {
		// Container verbs exit like docker's: the container's own code,
		// or 125 and a message of their own.
		var se dockercli.StatusError
		if errors.As(err, &se) {
			if se.Status != "" {
				fmt.Fprintln(os.Stderr, se.Status)
			}
			return se.StatusCode
		}
		fmt.Fprintln(os.Stderr, "Error:", strings.TrimSpace(err.Error()))
		return 1
	}
	return 0
}
