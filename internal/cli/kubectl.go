package cli

import (
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/component-base/cli"
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"skiff.dev/skiff/internal/daemon"
)

func newKubectlCmd() *cobra.Command {
	return &cobra.Command{
		Use:                "kubectl",
		Short:              "Run kubectl against this cluster (the real kubectl, built in)",
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			os.Exit(RunKubectl(args))
			return nil
		},
	}
}

// RunKubectl runs the embedded kubectl with args (without the program
// name) and returns its exit code. When KUBECONFIG is unset and the local
// server's admin kubeconfig exists, kubectl uses it.
func RunKubectl(args []string) int {
	if os.Getenv("KUBECONFIG") == "" {
		dataDir := os.Getenv("SKIFF_DATA_DIR")
		if dataDir == "" {
			dataDir = DefaultDataDir
		}
		if p := daemon.AdminKubeconfigPath(dataDir); fileExists(p) {
			os.Setenv("KUBECONFIG", p)
		}
	}
	command := kubectlcmd.NewDefaultKubectlCommandWithArgs(kubectlcmd.KubectlOptions{
		PluginHandler: kubectlcmd.NewDefaultPluginHandler([]string{"kubectl"}),
		Arguments:     append([]string{"kubectl"}, args...),
		ConfigFlags:   genericclioptions.NewConfigFlags(true).WithDeprecatedPasswordFlag().WithDiscoveryBurst(300).WithDiscoveryQPS(50.0),
		IOStreams:     genericiooptions.IOStreams{In: os.Stdin, Out: os.Stdout, ErrOut: os.Stderr},
	})
	command.SetArgs(args)
	if err := cli.RunNoErrOutput(command); err != nil {
		cmdutil.CheckErr(err) // prints the error as kubectl does and exits
	}
	return 0
}

func fileExists(p string) bool {
	_, err := os.Stat(filepath.Clean(p))
	return err == nil
}
