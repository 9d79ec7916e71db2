package dockercli

import (
	"io"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

func (c *cli) newLogsCmd() *cobra.Command {
	var opts client.ContainerLogsOptions
	cmd := &cobra.Command{
		Use:   "logs [OPTIONS] CONTAINER",
		Short: "Fetch the logs of a container",
		Args:  exactArgs(1),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			api, err := c.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			ctr, err := api.ContainerInspect(ctx, args[0], client.ContainerInspectOptions{})
			if err != nil {
				return err
			}
			opts.ShowStdout, opts.ShowStderr = true, true
			body, err := api.ContainerLogs(ctx, ctr.Container.ID, opts)
			if err != nil {
				return err
			}
			defer body.Close()
			if ctr.Container.Config != nil && ctr.Container.Config.Tty {
				_, err = io.Copy(c.out(), body)
			} else {
				_, err = stdcopy.StdCopy(c.out(), c.err(), body)
			}
			return err
		}),
	}
	fs := cmd.Flags()
	fs.BoolVarP(&opts.Follow, "follow", "f", false, "Follow log output")
	fs.StringVar(&opts.Since, "since", "", `Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)`)
	fs.StringVar(&opts.Until, "until", "", `Show logs before a timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m" for 42 minutes)`)
	fs.BoolVarP(&opts.Timestamps, "timestamps", "t", false, "Show timestamps")
	fs.BoolVar(&opts.Details, "details", false, "Show extra details provided to logs")
	fs.StringVarP(&opts.Tail, "tail", "n", "all", "Number of lines to show from the end of the logs")
	return cmd
}
