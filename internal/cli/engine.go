package cli

import (
	"log/slog"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"skiff.dev/skiff/internal/daemon"
)

func newEngineCmd() *cobra.Command {
	var o daemon.EngineOptions
	cmd := &cobra.Command{
		Use:   "engine",
		Short: "Run the container engine and serve the Docker Engine API",
		Long: `Run the container engine alone (Docker's job): containers, images,
networks and volumes, served as the Docker Engine API on a unix socket, so
the docker CLI (DOCKER_HOST=unix:///run/skiff/docker.sock) and Skiff's own
container verbs drive it. Containers keep running when the engine stops
and are adopted again when it starts.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Logger = slog.Default()
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return daemon.RunEngine(ctx, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.DataDir, "data-dir", envOr("SKIFF_DATA_DIR", DefaultDataDir), "Skiff's data directory")
	f.StringVar(&o.RunDir, "run-dir", "/run/skiff", "runtime state and network namespaces")
	f.StringVar(&o.Socket, "socket", "", "Docker Engine API socket (default <run-dir>/docker.sock)")
	f.StringVar(&o.ShimPath, "shim", "", "the skiff-shim binary (default: beside skiff, then $PATH)")
	return cmd
}
