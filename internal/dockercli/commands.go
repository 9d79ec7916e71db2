package dockercli

import (
	"io"
	"os"

	"github.com/moby/moby/client"
	"github.com/moby/term"
	"github.com/spf13/cobra"
)

// DefaultHost is where the Skiff engine serves the Docker Engine API.
const DefaultHost = "unix:///run/skiff/docker.sock"

// Options are what the commands need from their surroundings.
type Options struct {
	// Host is the engine's address (unix:///path or tcp://host:port).
	// Empty means $DOCKER_HOST, or DefaultHost when that is unset too.
	// The --host/-H flag overrides it.
	Host string
	// In, Out and Err are the standard streams; nil means the process's.
	In       io.Reader
	Out, Err io.Writer
}

// Commands returns the container verbs, each a top-level command: run,
// create, start, stop, restart, kill, rm, logs, exec, attach, top, stats,
// wait, commit, export, rename, ps, inspect, info, and the container,
// network, volume and system groups. They build no client and do no I/O until
// one of them runs. A nil o means the defaults.
func Commands(o *Options) []*cobra.Command {
	if o == nil {
		o = &Options{}
	}
	c := &cli{opts: o}
	cmds := append(c.containerVerbs(), c.newPsCmd("ps"), c.newInspectCmd(""), c.newInfoCmd(),
		c.newContainerCmd(), c.newNetworkCmd(), c.newVolumeCmd(), c.newSystemCmd())
	for _, cmd := range cmds {
		cmd.PersistentFlags().StringVarP(&c.host, "host", "H", "", "Engine socket to connect to (default $DOCKER_HOST or "+DefaultHost+")")
		cmd.SetFlagErrorFunc(flagError)
		walk(cmd, func(sub *cobra.Command) { sub.DisableFlagsInUseLine = true })
	}
	return cmds
}

func walk(cmd *cobra.Command, fn func(*cobra.Command)) {
	fn(cmd)
	for _, sub := range cmd.Commands() {
		walk(sub, fn)
	}
}

// containerVerbs are the commands that exist both at the top level and
// under `container` (where ps is ls); each call makes new instances.
func (c *cli) containerVerbs() []*cobra.Command {
	return []*cobra.Command{
		c.newRunCmd(), c.newCreateCmd(), c.newStartCmd(), c.newStopCmd(), c.newRestartCmd(),
		c.newKillCmd(), c.newRmCmd(), c.newLogsCmd(), c.newExecCmd(),
		c.newAttachCmd(), c.newTopCmd(), c.newStatsCmd(), c.newWaitCmd(), c.newCommitCmd(),
		c.newExportCmd(), c.newRenameCmd(),
	}
}

// cli is the state the commands share: the options, the --host flag and
// the client, made on first use.
type cli struct {
	opts *Options
	host string
	api  *client.Client
}

// client returns the Docker API client for the chosen host.
func (c *cli) client() (*client.Client, error) {
	if c.api != nil {
		return c.api, nil
	}
	api, err := client.New(client.WithHost(c.daemonHost()), client.WithUserAgent("skiff-cli"))
	if err != nil {
		return nil, err
	}
	c.api = api
	return api, nil
}

// daemonHost is --host, else Options.Host, else $DOCKER_HOST, else DefaultHost.
func (c *cli) daemonHost() string {
	for _, h := range []string{c.host, c.opts.Host, os.Getenv("DOCKER_HOST")} {
		if h != "" {
			return h
		}
	}
	return DefaultHost
}

func (c *cli) in() io.Reader {
	if c.opts.In == nil {
		return os.Stdin
	}
	return c.opts.In
}

func (c *cli) out() io.Writer {
	if c.opts.Out == nil {
		return os.Stdout
	}
	return c.opts.Out
}

func (c *cli) err() io.Writer {
	if c.opts.Err == nil {
		return os.Stderr
	}
	return c.opts.Err
}

// terminalFd reports the file descriptor behind s and whether it is a
// terminal; streams that are not files are never terminals.
func terminalFd(s any) (uintptr, bool) {
	if f, ok := s.(interface{ Fd() uintptr }); ok {
		fd := f.Fd()
		return fd, term.IsTerminal(fd)
	}
	return 0, false
}
