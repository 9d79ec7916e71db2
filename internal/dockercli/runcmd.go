package dockercli

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/moby/term"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
)

type runOptions struct {
	createOptions
	detach     bool
	sigProxy   bool
	detachKeys string
}

func (c *cli) newRunCmd() *cobra.Command {
	var o runOptions
	var copts *containerOptions
	cmd := &cobra.Command{
		Use:   "run [OPTIONS] IMAGE [COMMAND] [ARG...]",
		Short: "Create and run a new container from an image",
		Args:  requiresMinArgs(1),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			cfg, platform, err := o.request(cmd, copts, args)
			if err != nil {
				return err
			}
			if o.detach && len(copts.attach.values) > 0 {
				return errors.New("conflicting options: cannot specify both --attach and --detach")
			}
			c.noteIgnored(copts)
			return c.runContainer(cmd, &o, cfg, platform, copts.name)
		}),
	}
	fs := cmd.Flags()
	fs.SetInterspersed(false)
	fs.Bool("help", false, "Print usage") // -h is --hostname
	fs.BoolVarP(&o.detach, "detach", "d", false, "Run container in background and print container ID")
	fs.BoolVar(&o.sigProxy, "sig-proxy", true, "Proxy received signals to the process")
	fs.StringVar(&o.detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	o.add(fs)
	copts = addContainerFlags(fs)
	fs.StringVar(&copts.name, "name", "", "Assign a name to the container")
	return cmd
}

// runContainer creates, attaches to, starts and waits for a container,
// like docker run: detached it prints the ID; attached it streams the
// container's output and ends with its exit status.
func (c *cli) runContainer(cmd *cobra.Command, o *runOptions, cfg *containerConfig, platform *ocispec.Platform, name string) error {
	config := cfg.Config
	if o.detach {
		config.AttachStdin, config.AttachStdout, config.AttachStderr, config.StdinOnce = false, false, false, false
	} else if err := c.checkTTY(config.AttachStdin, config.Tty); err != nil {
		return err
	}
	api, err := c.client()
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	id, err := c.createContainer(ctx, api, cfg, platform, name, &o.createOptions)
	if err != nil {
		return runFailed(cmd, err)
	}
	if !config.AttachStdin && !config.AttachStdout && !config.AttachStderr {
		fmt.Fprintln(c.out(), id) // docker prints it before starting
		if _, err := api.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
			return runFailed(cmd, err)
		}
		return nil
	}
	if o.sigProxy {
		defer forwardSignals(context.WithoutCancel(ctx), api, id)()
	}

	// The stream lives until the container's output ends, whatever
	// happens to the command's context; cancel ends it early.
	streamCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	resp, err := api.ContainerAttach(streamCtx, id, client.ContainerAttachOptions{
		Stream:     true,
		Stdin:      config.AttachStdin,
		Stdout:     config.AttachStdout,
		Stderr:     config.AttachStderr,
		DetachKeys: o.detachKeys,
	})
	if err != nil {
		return err
	}
	defer resp.Close()
	streamDone := c.startStreaming(streamCtx, resp.HijackedResponse, config, o.detachKeys)

	statusC := waitExitOrRemoved(context.WithoutCancel(ctx), api, id, cfg.HostConfig.AutoRemove, c.err())
	if _, err := api.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		cancel()
		<-streamDone
		if cfg.HostConfig.AutoRemove {
			<-statusC
		}
		return runFailed(cmd, err)
	}
	if config.Tty {
		if _, isTerm := terminalFd(c.out()); isTerm {
			stop := c.monitorTTYSize(streamCtx, func(h, w uint) error {
				_, err := api.ContainerResize(streamCtx, id, client.ContainerResizeOptions{Height: h, Width: w})
				return err
			})
			defer stop()
		}
	}

	select {
	case err := <-streamDone:
		if err != nil {
			var esc term.EscapeError
			if errors.As(err, &esc) {
				return nil // detached with the escape keys
			}
			return err
		}
		if status := <-statusC; status != 0 {
			return StatusError{StatusCode: status}
		}
	case status := <-statusC:
		// Output may still be in flight; only stop the stream when there
		// is no output to wait for.
		if !config.AttachStdout && !config.AttachStderr {
			cancel()
		}
		<-streamDone
		if status != 0 {
			return StatusError{StatusCode: status}
		}
	}
	return nil
}

// checkTTY refuses -it when standard input is not a terminal.
func (c *cli) checkTTY(attachStdin, tty bool) error {
	if !attachStdin || !tty {
		return nil
	}
	if _, isTerm := terminalFd(c.in()); !isTerm {
		return errors.New("the input device is not a TTY")
	}
	return nil
}

// waitExitOrRemoved starts waiting for the container to exit (or, with
// --rm, to be removed) and sends its exit status, 125 if waiting failed.
// The wait is registered with the engine before it returns.
func waitExitOrRemoved(ctx context.Context, api *client.Client, id string, removed bool, errOut io.Writer) <-chan int {
	condition := container.WaitConditionNextExit
	if removed {
		condition = container.WaitConditionRemoved
	}
	res := api.ContainerWait(ctx, id, client.ContainerWaitOptions{Condition: condition})
	statusC := make(chan int, 1)
	go func() {
		select {
		case r := <-res.Result:
			if r.Error != nil {
				fmt.Fprintln(errOut, "error waiting for container:", r.Error.Message)
				statusC <- exitCLIOrEngine
				return
			}
			statusC <- int(r.StatusCode)
		case err := <-res.Error:
			if !errors.Is(err, context.Canceled) {
				fmt.Fprintln(errOut, "error waiting for container:", err)
			}
			statusC <- exitCLIOrEngine
		}
	}()
	return statusC
}
