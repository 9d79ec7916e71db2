package cli

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	istioclient "istio.io/client-go/pkg/clientset/versioned"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"skiff.dev/skiff/internal/daemon"
	"skiff.dev/skiff/internal/mesh/control"
)

// newMeshCmd is `skiff mesh`: the sidecars' sync state and what one
// sidecar is told.
func newMeshCmd() *cobra.Command {
	var kubeconfig string
	cmd := &cobra.Command{
		Use:   "mesh",
		Short: "Inspect the service mesh: sidecar sync state and configuration",
	}
	cmd.PersistentFlags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig (default: $KUBECONFIG, then the local server's admin kubeconfig)")
	status := &cobra.Command{
		Use:   "status",
		Short: "Show every sidecar's configuration version, sent and applied (as istioctl proxy-status)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := meshRESTConfig(kubeconfig)
			if err != nil {
				return err
			}
			client, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				return err
			}
			sts, err := control.ReadStatuses(cmd.Context(), client)
			if err != nil {
				return err
			}
			control.WriteStatusTable(cmd.OutOrStdout(), sts, time.Now())
			return nil
		},
	}
	var namespace string
	explain := &cobra.Command{
		Use:   "explain POD",
		Short: "Explain a sidecar's configuration: routes, clusters and endpoints, inbound mTLS, authorization",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := meshRESTConfig(kubeconfig)
			if err != nil {
				return err
			}
			client, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				return err
			}
			istio, err := istioclient.NewForConfig(cfg)
			if err != nil {
				return err
			}
			snap, err := control.ListSnapshot(cmd.Context(), client, istio)
			if err != nil {
				return err
			}
			for _, p := range snap.Pods {
				if p.Namespace == namespace && p.Name == args[0] {
					doc, warnings := control.Translate(snap, p, nil, control.MeshOptions{})
					if doc == nil {
						return fmt.Errorf("pod %s/%s: %v", namespace, args[0], warnings)
					}
					control.Explain(cmd.OutOrStdout(), doc, warnings)
					return nil
				}
			}
			return fmt.Errorf("pod %s/%s not found", namespace, args[0])
		},
	}
	explain.Flags().StringVarP(&namespace, "namespace", "n", "default", "the pod's namespace")
	cmd.AddCommand(status, explain)
	return cmd
}

// meshRESTConfig is the API config: --kubeconfig, $KUBECONFIG, else the
// local server's admin kubeconfig.
func meshRESTConfig(kubeconfig string) (*rest.Config, error) {
	if kubeconfig == "" && os.Getenv("KUBECONFIG") == "" {
		dataDir := os.Getenv("SKIFF_DATA_DIR")
		if dataDir == "" {
			dataDir = DefaultDataDir
		}
		if p := daemon.AdminKubeconfigPath(dataDir); fileExists(p) {
			kubeconfig = p
		}
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = kubeconfig
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
	if err != nil {
		if clientcmd.IsEmptyConfig(err) {
			return nil, errors.New("no kubeconfig: pass --kubeconfig or set KUBECONFIG")
		}
		return nil, err
	}
	return cfg, nil
}
