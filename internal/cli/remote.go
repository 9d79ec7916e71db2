package cli

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"skiff.dev/skiff/internal/image/images"
)

func newRemoteCmds() []*cobra.Command {
	return []*cobra.Command{newPullCmd(), newPushCmd(), newLoginCmd(), newLogoutCmd()}
}

func newPullCmd() *cobra.Command {
	var f imageFlags
	var insecure bool
	cmd := &cobra.Command{
		Use: "pull NAME[:TAG|@DIGEST]", Short: "Pull an image from a registry", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, err := f.service()
			if err != nil {
				return err
			}
			id, err := svc.Pull(cmd.Context(), args[0], images.PullOptions{Insecure: insecure, Progress: cmd.OutOrStdout()})
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), id)
			return nil
		},
	}
	cmd.Flags().BoolVar(&insecure, "insecure", false, "allow plain HTTP (automatic for loopback and private addresses)")
	f.add(cmd)
	return cmd
}

func newPushCmd() *cobra.Command {
	var f imageFlags
	var insecure bool
	cmd := &cobra.Command{
		Use: "push NAME[:TAG]", Short: "Push an image to a registry", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, err := f.service()
			if err != nil {
				return err
			}
			dgst, err := svc.Push(cmd.Context(), args[0], images.PushOptions{Insecure: insecure, Progress: cmd.OutOrStdout()})
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "digest:", dgst)
			return nil
		},
	}
	cmd.Flags().BoolVar(&insecure, "insecure", false, "allow plain HTTP (automatic for loopback and private addresses)")
	f.add(cmd)
	return cmd
}

func newLoginCmd() *cobra.Command {
	var user, password string
	var passwordStdin bool
	cmd := &cobra.Command{
		Use: "login [flags] REGISTRY", Short: "Store credentials for a registry in the docker config.json", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if passwordStdin {
				line, err := bufio.NewReader(os.Stdin).ReadString('\n')
				if err != nil && line == "" {
					return fmt.Errorf("reading the password from standard input: %w", err)
				}
				password = strings.TrimRight(line, "\r\n")
			}
			if user == "" || password == "" {
				return fmt.Errorf("a username (-u) and a password (-p or --password-stdin) are required")
			}
			path, err := images.DefaultConfigPath()
			if err != nil {
				return err
			}
			if err := images.Login(cmd.Context(), args[0], user, password, path); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "Login Succeeded")
			return nil
		},
	}
	cmd.Flags().StringVarP(&user, "username", "u", "", "username")
	cmd.Flags().StringVarP(&password, "password", "p", "", "password (prefer --password-stdin)")
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the password from standard input")
	return cmd
}

func newLogoutCmd() *cobra.Command {
	return &cobra.Command{
		Use: "logout REGISTRY", Short: "Remove stored credentials for a registry", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := images.DefaultConfigPath()
			if err != nil {
				return err
			}
			if err := images.Logout(args[0], path); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), "Removing login credentials for", args[0])
			return nil
		},
	}
}
