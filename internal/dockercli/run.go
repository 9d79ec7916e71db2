package dockercli

import (
	"context"
	"fmt"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/distribution/reference"
	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/jsonmessage"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// createOptions are the flags create and run have beyond the container's.
type createOptions struct {
	pull, platform string
	quiet          bool
}

func (o *createOptions) add(fs *pflag.FlagSet) {
	fs.StringVar(&o.pull, "pull", PullMissing, `Pull image before creating ("always", "missing", "never")`)
	fs.StringVar(&o.platform, "platform", "", "Set platform if server is multi-platform capable")
	fs.BoolVarP(&o.quiet, "quiet", "q", false, "Suppress the pull output")
}

// request parses everything into a create request, or fails with 125.
func (o *createOptions) request(cmd *cobra.Command, copts *containerOptions, args []string) (*containerConfig, *ocispec.Platform, error) {
	if _, err := ParsePullPolicy(o.pull); err != nil {
		return nil, nil, invalidInput(cmd, err)
	}
	var platform *ocispec.Platform
	if o.platform != "" {
		p, err := ParsePlatform(o.platform)
		if err != nil {
			return nil, nil, invalidInput(cmd, err)
		}
		platform = &p
	}
	if _, err := reference.ParseAnyReference(args[0]); err != nil {
		return nil, nil, invalidInput(cmd, err)
	}
	cfg, err := copts.build(cmd.Flags(), args[0], args[1:])
	if err != nil {
		return nil, nil, invalidInput(cmd, err)
	}
	return cfg, platform, nil
}

func (c *cli) newCreateCmd() *cobra.Command {
	var o createOptions
	var copts *containerOptions
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create a new container",
		Args:  requiresMinArgs(1),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			cfg, platform, err := o.request(cmd, copts, args)
			if err != nil {
				return err
			}
			c.noteIgnored(copts)
			api, err := c.client()
			if err != nil {
				return err
			}
			id, err := c.createContainer(cmd.Context(), api, cfg, platform, copts.name, &o)
			if err != nil {
				return err
			}
			fmt.Fprintln(c.out(), id)
			return nil
		}),
	}
	fs := cmd.Flags()
	fs.SetInterspersed(false)
	fs.Bool("help", false, "Print usage") // -h is --hostname
	o.add(fs)
	copts = addContainerFlags(fs)
	fs.StringVar(&copts.name, "name", "", "Assign a name to the container")
	return cmd
}

// noteIgnored says which accepted flags Skiff does not act on yet.
func (c *cli) noteIgnored(copts *containerOptions) {
	if copts.init {
		fmt.Fprintln(c.err(), "WARNING: --init is accepted but ignored: Skiff does not run an init process in containers yet")
	}
}

// createContainer creates the container, pulling the image first with
// --pull always, or when the engine does not have it with --pull
// missing, and returns its ID. Warnings go to standard error.
func (c *cli) createContainer(ctx context.Context, api *client.Client, cfg *containerConfig, platform *ocispec.Platform, name string, o *createOptions) (string, error) {
	image := cfg.Config.Image
	var named reference.Named
	if ref, err := reference.ParseAnyReference(image); err == nil {
		if n, ok := ref.(reference.Named); ok {
			named = reference.TagNameOnly(n)
		}
	}
	if o.pull == PullAlways && named != nil {
		if err := c.pullImage(ctx, api, named, platform, o.quiet); err != nil {
			return "", err
		}
	}
	if h, w, ok := c.ttySize(); ok {
		cfg.HostConfig.ConsoleSize = [2]uint{h, w}
	}
	opts := client.ContainerCreateOptions{
		Config:           cfg.Config,
		HostConfig:       cfg.HostConfig,
		NetworkingConfig: cfg.NetworkingConfig,
		Platform:         platform,
		Name:             name,
	}
	res, err := api.ContainerCreate(ctx, opts)
	if err != nil && missingImage(err) && named != nil && o.pull == PullMissing {
		if !o.quiet {
			fmt.Fprintf(c.err(), "Unable to find image '%s' locally\n", reference.FamiliarString(named))
		}
		if err := c.pullImage(ctx, api, named, platform, o.quiet); err != nil {
			return "", err
		}
		res, err = api.ContainerCreate(ctx, opts)
	}
	if err != nil {
		return "", err
	}
	for _, w := range res.Warnings {
		fmt.Fprintln(c.err(), "WARNING:", w)
	}
	return res.ID, nil
}

// missingImage reports whether a create failed because the engine does
// not have the image (and not, say, because a network is missing).
func missingImage(err error) bool {
	return cerrdefs.IsNotFound(err) && strings.Contains(strings.ToLower(err.Error()), "image")
}

// pullImage asks the engine to pull, showing its progress on stderr.
func (c *cli) pullImage(ctx context.Context, api *client.Client, ref reference.Named, platform *ocispec.Platform, quiet bool) error {
	opts := client.ImagePullOptions{}
	if platform != nil {
		opts.Platforms = []ocispec.Platform{*platform}
	}
	resp, err := api.ImagePull(ctx, ref.String(), opts)
	if err != nil {
		return err
	}
	defer resp.Close()
	if quiet {
		return resp.Wait(ctx)
	}
	fd, isTerm := terminalFd(c.err())
	return jsonmessage.DisplayJSONMessagesStream(resp, c.err(), fd, isTerm, nil)
}
