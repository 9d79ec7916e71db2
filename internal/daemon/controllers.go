package daemon

import (
	"context"
	"log/slog"
	"sync"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"

	"skiff.dev/skiff/internal/controllers/garbagecollector"
	"skiff.dev/skiff/internal/controllers/namespace"
)

// runControllers starts the control loops against the API; the returned
// channel closes when they have all stopped after ctx ends.
func runControllers(ctx context.Context, cfg *rest.Config, log *slog.Logger) (<-chan struct{}, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	mc, err := metadata.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	loops := map[string]interface {
		Run(ctx context.Context, workers int) error
	}{
		"garbage-collector": garbagecollector.New(mc, log),
		"namespace":         namespace.New(cs, mc, log),
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	for name, c := range loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Run(ctx, 2); err != nil {
				log.Error("controller stopped", "component", name, "err", err)
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()
	return done, nil
}
