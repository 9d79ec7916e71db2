package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"skiff.dev/skiff/internal/dockercli"
	"skiff.dev/skiff/internal/image/build"
	"skiff.dev/skiff/internal/image/content"
)

func newBuildCmd() *cobra.Command {
	var (
		opts      build.Options
		dataDir   string
		buildArgs []string
	)
	cmd := &cobra.Command{
		Use:   "build [flags] CONTEXT",
		Short: "Build an image from a Dockerfile",
		Long: `Build an image from a Dockerfile into the local image store (the same store
the server's registry and nodes use). When the container engine answers
($DOCKER_HOST, default unix:///run/skiff/docker.sock) the build runs there,
RUN steps in containers; otherwise (or with --data-dir) it runs in this
process, where a RUN step fails with a clear error.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.ContextDir = args[0]
			if opts.Dockerfile != "" {
				// -f is relative to the working directory, as with docker.
				abs, err := filepath.Abs(opts.Dockerfile)
				if err != nil {
					return err
				}
				opts.Dockerfile = abs
			}
			opts.BuildArgs = map[string]string{}
			for _, kv := range buildArgs {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					// --build-arg NAME takes the value from the environment, as docker does.
					v, ok = os.LookupEnv(k)
					if !ok {
						continue
					}
				}
				opts.BuildArgs[k] = v
			}
			if host := dockercli.EngineHost(""); !cmd.Flags().Changed("data-dir") && dockercli.EngineReachable(host) {
				return dockercli.Build(cmd.Context(), host, dockercli.BuildRequest{
					ContextDir: opts.ContextDir, Dockerfile: opts.Dockerfile, Tags: opts.Tags,
					BuildArgs: opts.BuildArgs, Target: opts.Target, NoCache: opts.NoCache,
					Quiet: opts.Quiet, Platform: opts.Platform,
				}, cmd.OutOrStdout())
			}
			opts.Progress = cmd.OutOrStdout()
			store := content.New(filepath.Join(dataDir, "images"))
			if err := store.Init(); err != nil {
				return fmt.Errorf("image store: %w", err)
			}
			_, err := build.New(store, nil).Build(cmd.Context(), opts)
			return err
		},
	}
	f := cmd.Flags()
	f.StringArrayVarP(&opts.Tags, "tag", "t", nil, "name and optionally a tag (NAME[:TAG]); repeatable")
	f.StringVarP(&opts.Dockerfile, "file", "f", "", "Dockerfile (default CONTEXT/Dockerfile)")
	f.StringArrayVar(&buildArgs, "build-arg", nil, "build-time variable KEY=VALUE; repeatable")
	f.StringVar(&opts.Target, "target", "", "build up to this stage")
	f.BoolVar(&opts.NoCache, "no-cache", false, "do not use the layer cache")
	f.StringVar(&opts.Platform, "platform", "", "target platform (only linux/amd64 and the host's are supported)")
	f.BoolVarP(&opts.Quiet, "quiet", "q", false, "print only the image ID")
	f.StringVar(&dataDir, "data-dir", envOr("SKIFF_DATA_DIR", DefaultDataDir), "Skiff's data directory (holds the image store)")
	return cmd
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
