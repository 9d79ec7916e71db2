package dockercli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/moby/moby/client"
	"github.com/spf13/cobra"
)

func (c *cli) newTopCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "top CONTAINER [ps OPTIONS]",
		Short: "Display the running processes of a container",
		Args:  requiresMinArgs(1),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			api, err := c.client()
			if err != nil {
				return err
			}
			res, err := api.ContainerTop(cmd.Context(), args[0], client.ContainerTopOptions{Arguments: args[1:]})
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(c.out(), 20, 1, 3, ' ', 0)
			fmt.Fprintln(w, strings.Join(res.Titles, "\t"))
			for _, p := range res.Processes {
				fmt.Fprintln(w, strings.Join(p, "\t"))
			}
			return w.Flush()
		}),
	}
	cmd.Flags().SetInterspersed(false)
	return cmd
}

func (c *cli) newCommitCmd() *cobra.Command {
	var (
		author, message string
		pause           bool
		changes         = newList(nil)
	)
	cmd := &cobra.Command{
		Use:   "commit [OPTIONS] CONTAINER [REPOSITORY[:TAG]]",
		Short: "Create a new image from a container's changes",
		Args:  rangeArgs(1, 2),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			opts := client.ContainerCommitOptions{Author: author, Comment: message, Changes: changes.values, NoPause: !pause}
			if len(args) > 1 {
				opts.Reference = args[1]
			}
			api, err := c.client()
			if err != nil {
				return err
			}
			res, err := api.ContainerCommit(cmd.Context(), args[0], opts)
			if err != nil {
				return err
			}
			fmt.Fprintln(c.out(), res.ID)
			return nil
		}),
	}
	fs := cmd.Flags()
	fs.SetInterspersed(false)
	fs.StringVarP(&author, "author", "a", "", `Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")`)
	fs.StringVarP(&message, "message", "m", "", "Commit message")
	fs.VarP(changes, "change", "c", "Apply Dockerfile instruction to the created image")
	fs.BoolVarP(&pause, "pause", "p", true, "Pause container during commit")
	return cmd
}

func (c *cli) newExportCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "export [OPTIONS] CONTAINER",
		Short: "Export a container's filesystem as a tar archive",
		Args:  exactArgs(1),
		RunE: run(func(cmd *cobra.Command, args []string) error {
			if output == "" {
				if _, isTerm := terminalFd(c.out()); isTerm {
					return errors.New("cowardly refusing to save to a terminal. Use the -o flag or redirect")
				}
			}
			api, err := c.client()
			if err != nil {
				return err
			}
			body, err := api.ContainerExport(cmd.Context(), args[0], client.ContainerExportOptions{})
			if err != nil {
				return err
			}
			defer body.Close()
			if output == "" {
				_, err = io.Copy(c.out(), body)
				return err
			}
			if err := writeFileAtomic(output, body); err != nil {
				return fmt.Errorf("failed to export container: %w", err)
			}
			return nil
		}),
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "Write to a file, instead of STDOUT")
	return cmd
}

// writeFileAtomic writes r to name through a temporary file beside it,
// so that a failed export leaves no half-written archive.
func writeFileAtomic(name string, r io.Reader) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), "."+filepath.Base(name)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := io.Copy(tmp, r); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
}
