package dockercli

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/docker/go-units"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

func (c *cli) newInfoCmd() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "info [OPTIONS]",
		Short: "Display system-wide information",
		Args:  noArgs,
		RunE: run(func(cmd *cobra.Command, _ []string) error {
			api, err := c.client()
			if err != nil {
				return err
			}
			res, err := api.Info(cmd.Context(), client.InfoOptions{})
			if err != nil {
				return err
			}
			if format == "" {
				printInfo(c.out(), c.daemonHost(), res.Info)
				for _, w := range res.Info.Warnings {
					fmt.Fprintln(c.err(), w)
				}
				return nil
			}
			if format == "json" {
				format = "{{json .}}"
			}
			tmpl, err := parseTemplate(format)
			if err != nil {
				return StatusError{Status: err.Error(), StatusCode: 64, Cause: err}
			}
			if err := tmpl.Execute(c.out(), res.Info); err != nil {
				return fmt.Errorf("template: %w", err)
			}
			fmt.Fprintln(c.out())
			return nil
		}),
	}
	cmd.Flags().StringVarP(&format, "format", "f", "", "Format output using a custom template ('json' or a Go template)")
	return cmd
}

// printInfo prints the engine's information the way docker info prints
// its Server section.
func printInfo(w io.Writer, host string, i system.Info) {
	p := func(label string, v any) { fmt.Fprintln(w, label, v) }
	nonEmpty := func(label, v string) {
		if v != "" {
			p(label, v)
		}
	}
	fmt.Fprintln(w, "Client:")
	p(" Context:", "default")
	p(" Host:", host)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Server:")
	p(" Containers:", i.Containers)
	p("  Running:", i.ContainersRunning)
	p("  Paused:", i.ContainersPaused)
	p("  Stopped:", i.ContainersStopped)
	p(" Images:", i.Images)
	nonEmpty(" Server Version:", i.ServerVersion)
	nonEmpty(" Storage Driver:", i.Driver)
	for _, kv := range i.DriverStatus {
		fmt.Fprintf(w, "  %s: %s\n", kv[0], kv[1])
	}
	nonEmpty(" Logging Driver:", i.LoggingDriver)
	nonEmpty(" Cgroup Driver:", i.CgroupDriver)
	nonEmpty(" Cgroup Version:", i.CgroupVersion)
	fmt.Fprintln(w, " Plugins:")
	p("  Volume:", strings.Join(i.Plugins.Volume, " "))
	p("  Network:", strings.Join(i.Plugins.Network, " "))
	p("  Log:", strings.Join(i.Plugins.Log, " "))
	if len(i.Runtimes) > 0 {
		names := make([]string, 0, len(i.Runtimes))
		for n := range i.Runtimes {
			names = append(names, n)
		}
		sort.Strings(names)
		p(" Runtimes:", strings.Join(names, " "))
		p(" Default Runtime:", i.DefaultRuntime)
	}
	if len(i.SecurityOptions) > 0 {
		fmt.Fprintln(w, " Security Options:")
		for _, so := range i.SecurityOptions {
			name := strings.TrimPrefix(so, "name=")
			name, _, _ = strings.Cut(name, ",")
			fmt.Fprintln(w, "  "+name)
		}
	}
	nonEmpty(" Kernel Version:", i.KernelVersion)
	nonEmpty(" Operating System:", i.OperatingSystem)
	nonEmpty(" OSType:", i.OSType)
	nonEmpty(" Architecture:", i.Architecture)
	p(" CPUs:", i.NCPU)
	p(" Total Memory:", units.BytesSize(float64(i.MemTotal)))
	nonEmpty(" Name:", i.Name)
	nonEmpty(" ID:", i.ID)
	p(" Docker Root Dir:", i.DockerRootDir)
	p(" Debug Mode:", i.Debug)
	nonEmpty(" HTTP Proxy:", i.HTTPProxy)
	nonEmpty(" HTTPS Proxy:", i.HTTPSProxy)
	nonEmpty(" No Proxy:", i.NoProxy)
	if len(i.Labels) > 0 {
		fmt.Fprintln(w, " Labels:")
		for _, l := range i.Labels {
			fmt.Fprintln(w, "  "+l)
		}
	}
	p(" Experimental:", i.ExperimentalBuild)
	p(" Live Restore Enabled:", i.LiveRestoreEnabled)
}
