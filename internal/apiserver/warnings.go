package apiserver

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
)

type warningsKey struct{}

// warnings collects the Warning headers of one request.
type warnings struct {
	mu   sync.Mutex
	w    http.ResponseWriter
	sent []string
}

// withWarnings lets AddWarning reach w's headers for the request's
// lifetime.
func withWarnings(ctx context.Context, w http.ResponseWriter) context.Context {
	return context.WithValue(ctx, warningsKey{}, &warnings{w: w})
}

// AddWarning adds a warning (a "Warning: 299 - ..." header, which kubectl
// prints) to the response of the request ctx belongs to, as upstream's
// warning.AddWarning: admission plugins use it for problems that do not
// fail the write. The same message is sent once. Outside a request it
// does nothing.
func AddWarning(ctx context.Context, msg string) {
	ws, ok := ctx.Value(warningsKey{}).(*warnings)
	if !ok || msg == "" {
		return
	}
	ws.mu.Lock()
	defer ws.mu.Unlock()
	if slices.Contains(ws.sent, msg) {
		return
	}
	ws.sent = append(ws.sent, msg)
	ws.w.Header().Add("Warning", fmt.Sprintf("299 - %q", msg))
}
