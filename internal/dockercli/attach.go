package dockercli

import (
	"context"
	"errors"
	"os"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/moby/term"
	"github.com/spf13/cobra"
)

// startAttached is `start -a [-i]`: attach, start, stream until the
// container exits, and end with its status.
func (c *cli) startAttached(ctx context.Context, api *client.Client, name string, interactive bool, detachKeys string) error {
	ctr, err := api.ContainerInspect(ctx, name, client.ContainerInspectOptions{})
	if err != nil {
		return err
	}
	id, cfg := ctr.Container.ID, ctr.Container.Config
	if cfg == nil {
		cfg = &container.Config{}
	}
	if !cfg.Tty {
		stop := forwardSignals(context.WithoutCancel(ctx), api, id)
		defer stop()
	}
	streamCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	attachIn := interactive && cfg.OpenStdin
	resp, err := api.ContainerAttach(streamCtx, id, client.ContainerAttachOptions{
		Stream: true, Stdin: attachIn, Stdout: true, Stderr: true, DetachKeys: detachKeys,
	})
	if err != nil {
		return err
	}
	defer resp.Close()
	streamDone := c.startStreaming(streamCtx, resp.HijackedResponse,
		&container.Config{Tty: cfg.Tty, AttachStdin: attachIn, AttachStdout: true, AttachStderr: true}, detachKeys)

	autoRemove := ctr.Container.HostConfig != nil && ctr.Container.HostConfig.AutoRemove
	statusC := waitExitOrRemoved(context.WithoutCancel(ctx), api, id, autoRemove, c.err())
	if _, err := api.ContainerStart(ctx, id, client.ContainerStartOptions{}); err != nil {
		cancel()
		<-streamDone
		if autoRemove {
			<-statusC
		}
		return err
	}
	if cfg.Tty {
		if _, isTerm := terminalFd(c.out()); isTerm {
			defer c.monitorTTYSize(streamCtx, func(h, w uint) error {
				_, err := api.ContainerResize(streamCtx, id, client.ContainerResizeOptions{Height: h, Width: w})
				return err
			})()
		}
	}
	if err := <-streamDone; err != nil {
		var esc term.EscapeError
		if errors.As(err, &esc) {
			return nil
		}
		return err
	}
	if status := <-statusC; status != 0 {
		return StatusError{StatusCode: status}
	}
	return nil
}

func (c *cli) newAttachCmd() *cobra.Command {
	var (
		noStdin, sigProxy bool
		detachKeys        string
	)
	cmd := &cobra.Command{
		Use:   "attach [OPTIONS] CONTAINER",
		Short: "Attach local standard input, output, and error streams to a running container",
		Args:  exactArgs(1),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			api, err := c.client()
			if err != nil {
				return err
			}
			ctr, err := api.ContainerInspect(ctx, args[0], client.ContainerInspectOptions{})
			if err != nil {
				return err
			}
			id, cfg, state := ctr.Container.ID, ctr.Container.Config, ctr.Container.State
			if cfg == nil {
				cfg = &container.Config{}
			}
			if state == nil || !state.Running {
				return errors.New("You cannot attach to a stopped container, start it first")
			}
			if state.Paused {
				return errors.New("You cannot attach to a paused container, unpause it first")
			}
			if err := c.checkTTY(!noStdin, cfg.Tty); err != nil {
				return err
			}
			wait := api.ContainerWait(context.WithoutCancel(ctx), id, client.ContainerWaitOptions{})
			if sigProxy && !cfg.Tty {
				defer forwardSignals(context.WithoutCancel(ctx), api, id)()
			}
			attachIn := !noStdin && cfg.OpenStdin
			resp, err := api.ContainerAttach(ctx, id, client.ContainerAttachOptions{
				Stream: true, Stdin: attachIn, Stdout: true, Stderr: true, DetachKeys: detachKeys,
			})
			if err != nil {
				return err
			}
			defer resp.Close()
			if cfg.Tty {
				if _, isTerm := terminalFd(c.out()); isTerm {
					defer c.monitorTTYSize(ctx, func(h, w uint) error {
						_, err := api.ContainerResize(ctx, id, client.ContainerResizeOptions{Height: h, Width: w})
						return err
					})()
				}
			}
			err = <-c.startStreaming(ctx, resp.HijackedResponse,
				&container.Config{Tty: cfg.Tty, AttachStdin: attachIn, AttachStdout: true, AttachStderr: true}, detachKeys)
			if err != nil {
				var esc term.EscapeError
				if errors.As(err, &esc) || errors.Is(err, context.Canceled) {
					return nil
				}
				return err
			}
			select {
			case r := <-wait.Result:
				if r.Error != nil {
					return errors.New(r.Error.Message)
				}
				if r.StatusCode != 0 {
					return StatusError{StatusCode: int(r.StatusCode)}
				}
			case err := <-wait.Error:
				return err
			}
			return nil
		}),
	}
	fs := cmd.Flags()
	fs.BoolVar(&noStdin, "no-stdin", false, "Do not attach STDIN")
	fs.BoolVar(&sigProxy, "sig-proxy", true, "Proxy all received signals to the process")
	fs.StringVar(&detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	return cmd
}

func (c *cli) newExecCmd() *cobra.Command {
	var (
		interactive, tty, detach, privileged bool
		user, workdir, detachKeys            string
		env                                  = newList(func(s string) (string, error) { return ParseEnv(s, os.LookupEnv) })
		envFile                              = newList(nil)
	)
	cmd := &cobra.Command{
		Use:   "exec [OPTIONS] CONTAINER COMMAND [ARG...]",
		Short: "Execute a command in a running container",
		Args:  requiresMinArgs(2),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var envs []string
			for _, f := range envFile.values {
				fromFile, err := readEnvFile(f)
				if err != nil {
					return err
				}
				envs = append(envs, fromFile...)
			}
			envs = append(envs, env.values...)
			opts := client.ExecCreateOptions{
				User: user, Privileged: privileged, TTY: tty, Env: envs, WorkingDir: workdir,
				Cmd: args[1:], DetachKeys: detachKeys,
				AttachStdin: interactive && !detach, AttachStdout: !detach, AttachStderr: !detach,
			}
			api, err := c.client()
			if err != nil {
				return err
			}
			// Fail on a missing container before the TTY check (as docker).
			if _, err := api.ContainerInspect(ctx, args[0], client.ContainerInspectOptions{}); err != nil {
				return err
			}
			if !detach {
				if err := c.checkTTY(opts.AttachStdin, tty); err != nil {
					return err
				}
			}
			if h, w, ok := c.ttySize(); ok && tty {
				opts.ConsoleSize = client.ConsoleSize{Height: h, Width: w}
			}
			created, err := api.ExecCreate(ctx, args[0], opts)
			if err != nil {
				return err
			}
			if detach {
				_, err := api.ExecStart(ctx, created.ID, client.ExecStartOptions{Detach: true, TTY: tty, ConsoleSize: opts.ConsoleSize})
				return err
			}
			return c.interactiveExec(ctx, api, created.ID, opts)
		}),
	}
	fs := cmd.Flags()
	fs.SetInterspersed(false)
	fs.BoolVarP(&interactive, "interactive", "i", false, "Keep STDIN open even if not attached")
	fs.BoolVarP(&tty, "tty", "t", false, "Allocate a pseudo-TTY")
	fs.BoolVarP(&detach, "detach", "d", false, "Detached mode: run command in the background")
	fs.StringVarP(&user, "user", "u", "", `Username or UID (format: "<name|uid>[:<group|gid>]")`)
	fs.StringVarP(&workdir, "workdir", "w", "", "Working directory inside the container")
	fs.VarP(env, "env", "e", "Set environment variables")
	fs.Var(envFile, "env-file", "Read in a file of environment variables")
	fs.BoolVar(&privileged, "privileged", false, "Give extended privileges to the command")
	fs.StringVar(&detachKeys, "detach-keys", "", "Override the key sequence for detaching a container")
	return cmd
}

// interactiveExec streams an exec's stdio and ends with its exit code.
func (c *cli) interactiveExec(ctx context.Context, api *client.Client, execID string, opts client.ExecCreateOptions) error {
	resp, err := api.ExecAttach(ctx, execID, client.ExecAttachOptions{TTY: opts.TTY, ConsoleSize: opts.ConsoleSize})
	if err != nil {
		return err
	}
	defer resp.Close()
	done := c.startStreaming(ctx, resp.HijackedResponse, &container.Config{
		Tty: opts.TTY, AttachStdin: opts.AttachStdin, AttachStdout: opts.AttachStdout, AttachStderr: opts.AttachStderr,
	}, opts.DetachKeys)
	if opts.TTY {
		if _, isTerm := terminalFd(c.in()); isTerm {
			defer c.monitorTTYSize(ctx, func(h, w uint) error {
				_, err := api.ExecResize(ctx, execID, client.ExecResizeOptions{Height: h, Width: w})
				return err
			})()
		}
	}
	if err := <-done; err != nil {
		var esc term.EscapeError
		if errors.As(err, &esc) {
			return nil
		}
		return err
	}
	res, err := api.ExecInspect(ctx, execID, client.ExecInspectOptions{})
	if err != nil {
		if client.IsErrConnectionFailed(err) {
			return StatusError{StatusCode: -1}
		}
		return err
	}
	if res.ExitCode != 0 {
		return StatusError{StatusCode: res.ExitCode}
	}
	return nil
}
