package dockercli

import (
	"bufio"
	"fmt"
	"strings"

	"github.com/docker/go-units"
	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

// newGroupCmd makes a command that only holds subcommands.
func newGroupCmd(use, short string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short, Args: noArgs, RunE: func(cmd *cobra.Command, _ []string) error {
		return cmd.Help()
	}}
	cmd.AddCommand(subs...)
	return cmd
}

func (c *cli) newContainerCmd() *cobra.Command {
	ls := c.newPsCmd("ls")
	ls.Aliases = []string{"ps", "list"}
	subs := append(c.containerVerbs(), ls, c.newInspectCmd("container"), c.newContainerPruneCmd())
	return newGroupCmd("container", "Manage containers", subs...)
}

func (c *cli) newSystemCmd() *cobra.Command {
	return newGroupCmd("system", "Manage Skiff's container engine", c.newInfoCmd())
}

// filterFlag is the --filter flag of list and prune commands.
func filterFlag(cmd *cobra.Command, shorthand, example string) *listValue {
	f := newList(checkFilter)
	cmd.Flags().VarP(f, "filter", shorthand, `Provide filter values (e.g. "`+example+`")`)
	return f
}

// confirm asks the question on stdout and reads the answer from stdin.
func (c *cli) confirm(question string) bool {
	fmt.Fprint(c.out(), question+" [y/N] ")
	answer, _ := bufio.NewReader(c.in()).ReadString('\n')
	answer = strings.ToLower(strings.TrimSpace(answer))
	return answer == "y" || answer == "yes"
}

// pruneResult prints what a prune removed and the space reclaimed.
func (c *cli) pruneResult(what string, deleted []string, reclaimed uint64, showSpace bool) {
	if len(deleted) > 0 {
		fmt.Fprintf(c.out(), "Deleted %s:\n", what)
		for _, d := range deleted {
			fmt.Fprintln(c.out(), d)
		}
		if showSpace {
			fmt.Fprintln(c.out())
		}
	}
	if showSpace {
		fmt.Fprintln(c.out(), "Total reclaimed space:", units.HumanSize(float64(reclaimed)))
	}
}

func (c *cli) newContainerPruneCmd() *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "prune [OPTIONS]",
		Short: "Remove all stopped containers",
		Args:  noArgs,
	}
	filters := filterFlag(cmd, "", "until=<timestamp>")
	cmd.Flags().BoolVarP(&force, "force", "f", false, "Do not prompt for confirmation")
	cmd.RunE = run(func(cmd *cobra.Command, _ []string) error {
		if !force && !c.confirm("WARNING! This will remove all stopped containers.\nAre you sure you want to continue?") {
			return nil // declined: nothing to say (as docker)
		}
		api, err := c.client()
		if err != nil {
			return err
		}
		res, err := api.ContainerPrune(cmd.Context(), client.ContainerPruneOptions{Filters: parseFilters(filters.values)})
		if err != nil {
			return err
		}
		c.pruneResult("Containers", res.Report.ContainersDeleted, res.Report.SpaceReclaimed, true)
		return nil
	})
	return cmd
}
