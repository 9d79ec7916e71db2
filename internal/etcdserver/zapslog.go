package etcdserver

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// NewZapLogger returns a zap logger (what etcd takes) that writes through
// log, so etcd's lines come out with the rest of Skiff's structured logs.
// Entries below min are dropped.
func NewZapLogger(log *slog.Logger, min slog.Level) *zap.Logger {
	return zap.New(&slogCore{log: log, min: min})
}

type slogCore struct {
	log   *slog.Logger
	min   slog.Level
	attrs []any
}

func level(l zapcore.Level) slog.Level {
	switch {
	case l <= zapcore.DebugLevel:
		return slog.LevelDebug
	case l == zapcore.InfoLevel:
		return slog.LevelInfo
	case l == zapcore.WarnLevel:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

func (c *slogCore) Enabled(l zapcore.Level) bool { return level(l) >= c.min }

func (c *slogCore) With(fields []zapcore.Field) zapcore.Core {
	return &slogCore{log: c.log, min: c.min, attrs: append(append([]any{}, c.attrs...), attrs(fields)...)}
}

func (c *slogCore) Check(e zapcore.Entry, ce *zapcore.CheckedEntry) *zapcore.CheckedEntry {
	if c.Enabled(e.Level) {
		return ce.AddCore(e, c)
	}
	return ce
}

func (c *slogCore) Write(e zapcore.Entry, fields []zapcore.Field) error {
	lvl := level(e.Level)
	if closing(fields) || benign[e.Message] {
		lvl = slog.LevelDebug
	}
	if lvl < c.min {
		return nil
	}
	c.log.Log(context.Background(), lvl, e.Message, append(append([]any{}, c.attrs...), attrs(fields)...)...)
	return nil
}

// benign are etcd messages logged as warnings or errors that say nothing
// is wrong for an embedded member: a storage-version probe that runs
// before the first term on a fresh member, and notes on settings chosen
// on purpose (one port for HTTP and gRPC, no auth tokens when auth is off).
var benign = map[string]bool{
	"failed to update storage version": true,
	"Failed to detect schema version":  true,
	"Running http and grpc server on single port. This is not recommended for production.": true,
	"simple token is not cryptographically signed":                                         true,
}

// closing reports whether an entry's error is a listener or server closing.
func closing(fields []zapcore.Field) bool {
	for _, f := range fields {
		err, ok := f.Interface.(error)
		if !ok {
			continue
		}
		if errors.Is(err, net.ErrClosed) || errors.Is(err, http.ErrServerClosed) || strings.Contains(err.Error(), "server closed") {
			return true
		}
	}
	return false
}

func (c *slogCore) Sync() error { return nil }

func attrs(fields []zapcore.Field) []any {
	enc := zapcore.NewMapObjectEncoder()
	for _, f := range fields {
		f.AddTo(enc)
	}
	out := make([]any, 0, 2*len(enc.Fields))
	for k, v := range enc.Fields {
		out = append(out, slog.Any(k, v))
	}
	return out
}
