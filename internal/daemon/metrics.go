package daemon

import (
	"context"
	"log/slog"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"skiff.dev/skiff/internal/apiserver"
	"skiff.dev/skiff/internal/metricsapi"
)

// metricsAPI is the server's metrics.k8s.io: package metricsapi scraping
// the node agents through the node client (or ServerOptions.MetricsNodes)
// with its own informers on the loopback clientset, served by the API
// server as an extra group.
type metricsAPI struct {
	factory informers.SharedInformerFactory
	srv     *metricsapi.Server
	log     *slog.Logger
}

// newMetricsAPI builds it; it does no I/O.
func newMetricsAPI(loopback *rest.Config, nodes metricsapi.NodeGetter, o ServerOptions, log *slog.Logger) (*metricsAPI, error) {
	cs, err := kubernetes.NewForConfig(loopback)
	if err != nil {
		return nil, err
	}
	if o.MetricsNodes != nil {
		nodes = o.MetricsNodes
	}
	factory := informers.NewSharedInformerFactory(cs, 0)
	return &metricsAPI{
		factory: factory,
		srv:     metricsapi.New(factory, nodes, log, metricsapi.Options{Resolution: o.MetricsResolution}),
		log:     log,
	}, nil
}

// extra adds the group to the API server's configuration.
func (m *metricsAPI) extra(c *apiserver.Config) {
	c.Extra = append(c.Extra, apiserver.ExtraGroup{
		GroupVersion: metricsapi.GroupVersion, Resources: metricsapi.APIResources(), Handler: m.srv.Handler(),
	})
}

// start runs the informers and the scraper until ctx ends or the
// returned stop is called; stop waits for them to end.
func (m *metricsAPI) start(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	m.factory.Start(ctx.Done())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := m.srv.Run(ctx); err != nil {
			m.log.Error("metrics API stopped", "component", "metricsapi", "err", err)
		}
	}()
	return func() { cancel(); <-done; m.factory.Shutdown() }
}
