package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/distribution/reference"
	"github.com/docker/go-units"
	"github.com/spf13/cobra"

	"skiff.dev/skiff/internal/image/content"
	"skiff.dev/skiff/internal/image/images"
)

// imageFlags is the flag every image command shares: where the store is.
type imageFlags struct{ dataDir string }

func (f *imageFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.dataDir, "data-dir", envOr("SKIFF_DATA_DIR", DefaultDataDir), "Skiff's data directory (holds the image store)")
}

func (f *imageFlags) service() (*images.Service, error) {
	st := content.New(filepath.Join(f.dataDir, "images"))
	if err := st.Init(); err != nil {
		return nil, fmt.Errorf("image store: %w", err)
	}
	return images.New(st), nil
}

func newImageCmds() []*cobra.Command {
	image := &cobra.Command{Use: "image", Short: "Manage images (in the local image store)"}
	image.AddCommand(newInspectCmd())
	return []*cobra.Command{image, newImagesCmd(), newTagCmd(), newRmiCmd(), newHistoryCmd(), newSaveCmd(), newLoadCmd(), newImportCmd()}
}

func newImagesCmd() *cobra.Command {
	var f imageFlags
	var quiet bool
	cmd := &cobra.Command{
		Use: "images", Short: "List images", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			svc, err := f.service()
			if err != nil {
				return err
			}
			list, err := svc.List(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if quiet {
				for _, im := range list {
					fmt.Fprintln(out, shortID(im.ID))
				}
				return nil
			}
			tw := tabwriter.NewWriter(out, 0, 8, 3, ' ', 0)
			fmt.Fprintln(tw, "REPOSITORY\tTAG\tIMAGE ID\tCREATED\tSIZE")
			for _, im := range list {
				created := units.HumanDuration(time.Since(time.Unix(im.Created, 0))) + " ago"
				size := units.HumanSizeWithPrecision(float64(im.Size), 3)
				for _, t := range im.RepoTags {
					repo, tag := splitTag(t)
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", repo, tag, shortID(im.ID), created, size)
				}
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVarP(&quiet, "quiet", "q", false, "only show image IDs")
	f.add(cmd)
	return cmd
}

func newTagCmd() *cobra.Command {
	var f imageFlags
	cmd := &cobra.Command{
		Use: "tag SOURCE TARGET", Short: "Give an image another name", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, err := f.service()
			if err != nil {
				return err
			}
			return svc.Tag(cmd.Context(), args[0], args[1])
		},
	}
	f.add(cmd)
	return cmd
}

func newRmiCmd() *cobra.Command {
	var f imageFlags
	var force bool
	cmd := &cobra.Command{
		Use: "rmi IMAGE...", Short: "Remove images", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, err := f.service()
			if err != nil {
				return err
			}
			var failed error
			for _, a := range args {
				removed, err := svc.Remove(cmd.Context(), a, force)
				if err != nil {
					fmt.Fprintln(cmd.ErrOrStderr(), "Error:", err)
					failed = fmt.Errorf("some images could not be removed")
					continue
				}
				for _, r := range removed {
					if r.Untagged != "" {
						fmt.Fprintln(cmd.OutOrStdout(), "Untagged:", r.Untagged)
					}
					if r.Deleted != "" {
						fmt.Fprintln(cmd.OutOrStdout(), "Deleted:", r.Deleted)
					}
				}
			}
			return failed
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "remove even when the image has several names or is in use")
	f.add(cmd)
	return cmd
}

func newInspectCmd() *cobra.Command {
	var f imageFlags
	cmd := &cobra.Command{
		Use: "inspect IMAGE...", Short: "Show images in detail (JSON, as docker image inspect)", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, err := f.service()
			if err != nil {
				return err
			}
			var all []images.Inspect
			for _, a := range args {
				im, err := svc.Inspect(cmd.Context(), a)
				if err != nil {
					return err
				}
				all = append(all, im)
			}
			return writeJSON(cmd.OutOrStdout(), all)
		},
	}
	f.add(cmd)
	return cmd
}

func newHistoryCmd() *cobra.Command {
	var f imageFlags
	cmd := &cobra.Command{
		Use: "history IMAGE", Short: "Show the steps an image was built with", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, err := f.service()
			if err != nil {
				return err
			}
			items, err := svc.History(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 8, 3, ' ', 0)
			fmt.Fprintln(tw, "IMAGE\tCREATED\tCREATED BY\tSIZE\tCOMMENT")
			for _, h := range items {
				id := h.ID
				if id != "<missing>" {
					id = shortID(id)
				}
				by := h.CreatedBy
				if len(by) > 45 {
					by = by[:44] + "…"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", id, units.HumanDuration(time.Since(time.Unix(h.Created, 0)))+" ago",
					by, units.HumanSizeWithPrecision(float64(h.Size), 3), h.Comment)
			}
			return tw.Flush()
		},
	}
	f.add(cmd)
	return cmd
}

func newSaveCmd() *cobra.Command {
	var f imageFlags
	var output string
	cmd := &cobra.Command{
		Use: "save -o FILE IMAGE...", Short: "Write images to a docker-archive tarball", Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, err := f.service()
			if err != nil {
				return err
			}
			var w io.Writer = cmd.OutOrStdout()
			if output != "" {
				file, err := os.Create(output)
				if err != nil {
					return err
				}
				defer file.Close()
				w = file
			} else if isTerminal(os.Stdout) {
				return fmt.Errorf("refusing to write an archive to a terminal: use -o FILE or redirect")
			}
			return svc.Save(cmd.Context(), w, args...)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "", "file to write (default standard output)")
	f.add(cmd)
	return cmd
}

func newLoadCmd() *cobra.Command {
	var f imageFlags
	var input string
	cmd := &cobra.Command{
		Use: "load [-i FILE]", Short: "Load images from a docker-archive or OCI archive", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			svc, err := f.service()
			if err != nil {
				return err
			}
			var r io.Reader = os.Stdin
			if input != "" {
				file, err := os.Open(input)
				if err != nil {
					return err
				}
				defer file.Close()
				r = file
			}
			names, err := svc.Load(cmd.Context(), r)
			for _, n := range names {
				fmt.Fprintln(cmd.OutOrStdout(), "Loaded image:", n)
			}
			return err
		},
	}
	cmd.Flags().StringVarP(&input, "input", "i", "", "archive to read (default standard input)")
	f.add(cmd)
	return cmd
}

func newImportCmd() *cobra.Command {
	var f imageFlags
	cmd := &cobra.Command{
		Use: "import FILE|- [NAME[:TAG]]", Short: "Make an image from a root filesystem tarball", Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, err := f.service()
			if err != nil {
				return err
			}
			var r io.Reader = os.Stdin
			if args[0] != "-" {
				file, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer file.Close()
				r = file
			}
			name := ""
			if len(args) == 2 {
				name = args[1]
			}
			id, err := svc.Import(cmd.Context(), r, name)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), id)
			return nil
		},
	}
	f.add(cmd)
	return cmd
}

// shortID is the 12 hex characters docker shows.
func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// splitTag shows a normalised name the way docker does: familiar
// repository (docker.io/library/ dropped) and tag.
func splitTag(name string) (repo, tag string) {
	ref, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return name, "<none>"
	}
	repo = reference.FamiliarName(ref)
	tag = "<none>"
	if t, ok := ref.(reference.Tagged); ok {
		tag = t.Tag()
	}
	return repo, tag
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "    ")
	return enc.Encode(v)
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
