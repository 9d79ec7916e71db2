package daemon

import (
	"context"
	"fmt"
	"log/slog"

	istioclient "istio.io/client-go/pkg/clientset/versioned"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"skiff.dev/skiff/internal/mesh/control"
)

// runMesh runs the node's mesh server (internal/mesh/control) until ctx
// ends: it serves the sidecars of this node's injected pods their
// configuration over sockets under nodeData/mesh/pods/<pod UID>/. It
// watches only this node's pods until one is injected, so it costs next
// to nothing on a node without sidecars. done is closed once it has
// returned.
//
// identity may be nil (documents then carry no workload certificate);
// the mesh CA (internal/mesh/identity) plugs in here.
func runMesh(ctx context.Context, cfg *rest.Config, client kubernetes.Interface, nodeName, nodeData string,
	identity control.IdentityProvider, log *slog.Logger) (done <-chan struct{}, err error) {
	istio, err := istioclient.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("mesh: %w", err)
	}
	srv := control.New(client, istio, nil, log, control.Options{
		NodeName: nodeName, DataDir: nodeData, Identity: identity,
	})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		if err := srv.Run(ctx); err != nil && ctx.Err() == nil {
			log.Error("mesh server stopped", "component", "mesh-control", "err", err)
		}
	}()
	return finished, nil
}
