package daemon

import (
	"context"
	"log/slog"
	"sync"

	"k8s.io/klog/v2"
)

var klogOnce sync.Once

// routeKlog sends client-go's klog output (leader election, informers) to
// the process's default slog logger, warnings and errors only. It is done
// once per process: klog is global, and servers in tests come and go.
func routeKlog() {
	klogOnce.Do(func() {
		klog.SetSlogLogger(slog.New(minLevel{slog.Default().Handler(), slog.LevelWarn}).With("component", "client-go"))
	})
}

// minLevel drops records below min.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(as), h.min}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h.Handler.WithGroup(name), h.min}
}
