package dockercli

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/moby/moby/api/types/volume"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

func (c *cli) newVolumeCmd() *cobra.Command {
	return newGroupCmd("volume", "Manage volumes",
		c.newVolumeCreateCmd(), c.newVolumeLsCmd(), c.newVolumeRmCmd(), c.newInspectCmd("volume"), c.newVolumePruneCmd())
}

func (c *cli) newVolumeCreateCmd() *cobra.Command {
	var (
		driver, name string
		labels       = newList(ParseLabel)
		opts         = newList(nil)
	)
	cmd := &cobra.Command{
		Use:   "create [OPTIONS] [VOLUME]",
		Short: "Create a volume",
		Args:  rangeArgs(0, 1),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				if name != "" {
					return errors.New("conflicting options: cannot specify a volume-name through both --name and as a positional arg")
				}
				name = args[0]
			}
			api, err := c.client()
			if err != nil {
				return err
			}
			res, err := api.VolumeCreate(cmd.Context(), client.VolumeCreateOptions{
				Name: name, Driver: driver, DriverOpts: ParseLabels(opts.values), Labels: ParseLabels(labels.values),
			})
			if err != nil {
				return err
			}
			fmt.Fprintln(c.out(), res.Volume.Name)
			return nil
		}),
	}
	fs := cmd.Flags()
	fs.StringVarP(&driver, "driver", "d", "local", "Specify volume driver name")
	fs.StringVar(&name, "name", "", "Specify volume name")
	_ = fs.MarkHidden("name")
	fs.Var(labels, "label", "Set metadata for a volume")
	fs.VarP(opts, "opt", "o", "Set driver specific options")
	return cmd
}

const defaultVolumeTable = "table {{.Driver}}\t{{.Name}}"

var volumeHeaders = headerRow{
	"Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE", "Mountpoint": "MOUNTPOINT",
	"Labels": "LABELS", "CreatedAt": "CREATED AT", "Availability": "AVAILABILITY", "Group": "GROUP", "Size": "SIZE",
}

func (c *cli) newVolumeLsCmd() *cobra.Command {
	var (
		quiet  bool
		format string
	)
	cmd := &cobra.Command{
		Use:     "ls [OPTIONS]",
		Aliases: []string{"list"},
		Short:   "List volumes",
		Args:    noArgs,
	}
	filters := filterFlag(cmd, "f", "dangling=true")
	cmd.RunE = run(func(cmd *cobra.Command, _ []string) error {
		table := defaultVolumeTable
		if quiet {
			table, format = "{{.Name}}", ""
		}
		f, err := newFormatter(format, table, volumeHeaders)
		if err != nil {
			return err
		}
		api, err := c.client()
		if err != nil {
			return err
		}
		res, err := api.VolumeList(cmd.Context(), client.VolumeListOptions{Filters: parseFilters(filters.values)})
		if err != nil {
			return err
		}
		for _, w := range res.Warnings {
			fmt.Fprintln(c.err(), "WARNING:", w)
		}
		sort.Slice(res.Items, func(i, j int) bool { return res.Items[i].Name < res.Items[j].Name })
		rows := make([]any, len(res.Items))
		for i, v := range res.Items {
			rows[i] = volumeRow{v: v}
		}
		return f.write(c.out(), rows)
	})
	fs := cmd.Flags()
	fs.BoolVarP(&quiet, "quiet", "q", false, "Only display volume names")
	fs.StringVar(&format, "format", "", "Format output using a custom template ('table', 'table TEMPLATE', 'json' or a Go template)")
	return cmd
}

// volumeRow is one volume in `volume ls`.
type volumeRow struct{ v volume.Volume }

func (r volumeRow) Name() string       { return r.v.Name }
func (r volumeRow) Driver() string     { return r.v.Driver }
func (r volumeRow) Scope() string      { return r.v.Scope }
func (r volumeRow) Mountpoint() string { return r.v.Mountpoint }
func (r volumeRow) CreatedAt() string  { return r.v.CreatedAt }
func (r volumeRow) Availability() string {
	return "N/A"
}
func (r volumeRow) Group() string { return "N/A" }
func (r volumeRow) Size() string  { return "N/A" }
func (r volumeRow) Labels() string {
	l := make([]string, 0, len(r.v.Labels))
	for k, v := range r.v.Labels {
		l = append(l, k+"="+v)
	}
	sort.Strings(l)
	return strings.Join(l, ",")
}
func (r volumeRow) Label(name string) string { return r.v.Labels[name] }

func (r volumeRow) MarshalJSON() ([]byte, error) {
	return json.Marshal(map[string]string{
		"Name": r.Name(), "Driver": r.Driver(), "Scope": r.Scope(), "Mountpoint": r.Mountpoint(),
		"Labels": r.Labels(), "CreatedAt": r.CreatedAt(), "Availability": r.Availability(), "Group": r.Group(), "Size": r.Size(),
	})
}

func (c *cli) newVolumeRmCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:     "rm [OPTIONS] VOLUME [VOLUME...]",
		Aliases: []string{"remove"},
		Short:   "Remove one or more volumes",
		Args:    requiresMinArgs(1),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			api, err := c.client()
			if err != nil {
				return err
			}
			var errs []error
			for _, name := range args {
				if _, err := api.VolumeRemove(cmd.Context(), name, client.VolumeRemoveOptions{Force: force}); err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintln(c.out(), name)
			}
			return errors.Join(errs...)
		}),
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Force the removal of one or more volumes")
	return cmd
}

func (c *cli) newVolumePruneCmd() *cobra.Command {
	var force, all bool
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove unused local volumes",
		Args:  noArgs,
	}
	filters := filterFlag(cmd, "", "label=<label>")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	cmd.Flags().BoolVarP(&all, "all", "a", false, "Remove all unused volumes, not just anonymous ones")
	cmd.RunE = run(func(cmd *cobra.Command, _ []string) error {
		warning := "WARNING! This will remove anonymous local volumes not used by at least one container."
		if all {
			warning = "WARNING! This will remove all local volumes not used by at least one container."
		}
		if !force && !c.confirm(warning+"\nAre you sure you want to continue?") {
			return nil // declined: nothing to say (as docker)
		}
		api, err := c.client()
		if err != nil {
			return err
		}
		res, err := api.VolumePrune(cmd.Context(), client.VolumePruneOptions{All: all, Filters: parseFilters(filters.values)})
		if err != nil {
			return err
		}
		c.pruneResult("Volumes", res.Report.VolumesDeleted, res.Report.SpaceReclaimed, true)
		return nil
	})
	return cmd
}
