package dockercli

import (
	"context"
	"errors"
	"fmt"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// eachContainer runs op on every name (at most 50 at a time, as docker
// does), prints each name that succeeded in order and returns the
// failures joined. A failure wrapped in warning is printed to errOut
// instead and counts as neither.
func (c *cli) eachContainer(ctx context.Context, names []string, op func(ctx context.Context, name string) error) error {
	results := make([]chan error, len(names))
	sem := make(chan struct{}, 50)
	for i, name := range names {
		results[i] = make(chan error, 1)
		go func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			results[i] <- op(ctx, name)
		}()
	}
	var errs []error
	for i, name := range names {
		err := <-results[i]
		var w warning
		switch {
		case errors.As(err, &w):
			fmt.Fprintln(c.err(), w.error)
		case err != nil:
			errs = append(errs, err)
		default:
			fmt.Fprintln(c.out(), name)
		}
	}
	return errors.Join(errs...)
}

// warning is an error eachContainer reports without failing.
type warning struct{ error }

func (c *cli) newStopCmd() *cobra.Command { return c.newStopLikeCmd("stop") }

func (c *cli) newRestartCmd() *cobra.Command { return c.newStopLikeCmd("restart") }

// newStopLikeCmd makes stop and restart, which take the same flags.
func (c *cli) newStopLikeCmd(verb string) *cobra.Command {
	var (
		timeout int
		signal  string
	)
	short := map[string]string{"stop": "Stop one or more running containers", "restart": "Restart one or more containers"}[verb]
	cmd := &cobra.Command{
		Use:   verb + " [OPTIONS] CONTAINER [CONTAINER...]",
		Short: short,
		Args:  requiresMinArgs(1),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			api, err := c.client()
			if err != nil {
				return err
			}
			var t *int
			if cmd.Flags().Changed("timeout") || cmd.Flags().Changed("time") {
				t = &timeout
			}
			return c.eachContainer(cmd.Context(), args, func(ctx context.Context, name string) error {
				if verb == "stop" {
					_, err := api.ContainerStop(ctx, name, client.ContainerStopOptions{Signal: signal, Timeout: t})
					return err
				}
				_, err := api.ContainerRestart(ctx, name, client.ContainerRestartOptions{Signal: signal, Timeout: t})
				return err
			})
		}),
	}
	fs := cmd.Flags()
	fs.IntVarP(&timeout, "timeout", "t", 0, "Seconds to wait before killing the container")
	fs.IntVar(&timeout, "time", 0, "Seconds to wait before killing the container (deprecated: use --timeout)")
	_ = fs.MarkHidden("time")
	fs.StringVarP(&signal, "signal", "s", "", "Signal to send to the container")
	return cmd
}

func (c *cli) newKillCmd() *cobra.Command {
	var signal string
	cmd := &cobra.Command{
		Use:   "kill [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Kill one or more running containers",
		Args:  requiresMinArgs(1),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			api, err := c.client()
			if err != nil {
				return err
			}
			return c.eachContainer(cmd.Context(), args, func(ctx context.Context, name string) error {
				_, err := api.ContainerKill(ctx, name, client.ContainerKillOptions{Signal: signal})
				return err
			})
		}),
	}
	cmd.Flags().StringVarP(&signal, "signal", "s", "", "Signal to send to the container")
	return cmd
}

func (c *cli) newRmCmd() *cobra.Command {
	var force, volumes, link bool
	cmd := &cobra.Command{
		Use:     "rm [OPTIONS] CONTAINER [CONTAINER...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more containers",
		Args:    requiresMinArgs(1),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			api, err := c.client()
			if err != nil {
				return err
			}
			return c.eachContainer(cmd.Context(), args, func(ctx context.Context, name string) error {
				name = strings.Trim(name, "/")
				if name == "" {
					return errors.New("container name cannot be empty")
				}
				_, err := api.ContainerRemove(ctx, name, client.ContainerRemoveOptions{Force: force, RemoveVolumes: volumes, RemoveLinks: link})
				if err != nil && force && cerrdefs.IsNotFound(err) {
					return warning{err} // rm -f of a missing container is not a failure
				}
				return err
			})
		}),
	}
	fs := cmd.Flags()
	fs.BoolVarP(&force, "force", "f", false, "Force the removal of a running container (uses SIGKILL)")
	fs.BoolVarP(&volumes, "volumes", "v", false, "Remove anonymous volumes associated with the container")
	fs.BoolVarP(&link, "link", "l", false, "Remove the specified link")
	return cmd
}

func (c *cli) newStartCmd() *cobra.Command {
	var (
		attach, interactive bool
		detachKeys          string
	)
	cmd := &cobra.Command{
		Use:   "start [OPTIONS] CONTAINER [CONTAINER...]",
		Short: "Start one or more stopped containers",
		Args:  requiresMinArgs(1),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			api, err := c.client()
			if err != nil {
				return err
			}
			if !attach && !interactive {
				var failed []string
				for _, name := range args {
					if _, err := api.ContainerStart(cmd.Context(), name, client.ContainerStartOptions{}); err != nil {
						fmt.Fprintln(c.err(), err)
						failed = append(failed, name)
						continue
					}
					fmt.Fprintln(c.out(), name)
				}
				if len(failed) > 0 {
					return fmt.Errorf("Error: failed to start containers: %s", strings.Join(failed, ", "))
				}
				return nil
			}
			if len(args) > 1 {
				return errors.New("you cannot start and attach multiple containers at once")
			}
			return c.startAttached(cmd.Context(), api, args[0], interactive, detachKeys)
		}),
	}
	fs := cmd.Flags()
	fs.BoolVarP(&attach, "attach", "a", false, "Attach STDOUT/STDERR and forward signals")
	fs.BoolVarP(&interactive, "interactive", "i", false, "Attach container's STDIN")
	fs.StringVar(&detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	return cmd
}

func (c *cli) newWaitCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "wait CONTAINER [CONTAINER...]",
		Short: "Block until one or more containers stop, then print their exit codes",
		Args:  requiresMinArgs(1),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			api, err := c.client()
			if err != nil {
				return err
			}
			var errs []error
			for _, name := range args {
				res := api.ContainerWait(cmd.Context(), name, client.ContainerWaitOptions{})
				select {
				case r := <-res.Result:
					fmt.Fprintln(c.out(), r.StatusCode)
				case err := <-res.Error:
					errs = append(errs, err)
				}
			}
			return errors.Join(errs...)
		}),
	}
}

func (c *cli) newRenameCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "rename CONTAINER NEW_NAME",
		Short: "Rename a container",
		Args:  exactArgs(2),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			oldName, newName := strings.TrimSpace(args[0]), strings.TrimSpace(args[1])
			if oldName == "" || newName == "" {
				return errors.New("Error: Neither old nor new names may be empty")
			}
			api, err := c.client()
			if err != nil {
				return err
			}
			if _, err := api.ContainerRename(cmd.Context(), oldName, client.ContainerRenameOptions{NewName: newName}); err != nil {
				fmt.Fprintln(c.err(), err)
				return fmt.Errorf("Error: failed to rename container named %s", oldName)
			}
			return nil
		}),
	}
}
