package daemon

import (
	"fmt"
	"log/slog"

	istioclient "istio.io/client-go/pkg/clientset/versioned"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/rest"

	"skiff.dev/skiff/internal/mesh/control"
)

// edgeGateway is the source of Istio Gateways (selector istio:
// ingressgateway) for the node's edge proxy, on the node networking's
// informer factory. It watches Gateways only until one selects the edge
// proxy.
func edgeGateway(cfg *rest.Config, factory informers.SharedInformerFactory, log *slog.Logger) (*control.GatewayWatcher, error) {
	istio, err := istioclient.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("istio gateways: %w", err)
	}
	return control.NewGatewayWatcher(istio, factory, log, control.GatewayWatcherOptions{}), nil
}
