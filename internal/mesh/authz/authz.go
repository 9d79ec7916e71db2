// Package authz evaluates Istio's AuthorizationPolicy and
// RequestAuthentication for a sidecar's inbound requests.
//
// PLACEHOLDER: the types and functions below are the contract only; the
// engine, JWT validation and the translation from Istio's objects
// (package fromistio) are still to be written.
package authz

import (
	"log/slog"
	"net/http"

	"skiff.dev/skiff/internal/mesh/proxy"
)

// Config is one workload's authorization and request authentication,
// as the node computes it from Istio's objects and ships it in the
// sidecar's document (JSON).
type Config struct{}

// Engine enforces one Config. It is immutable; a new Config makes a new
// Engine.
type Engine struct{ cfg Config }

// New checks cfg and returns its Engine.
func New(cfg Config, log *slog.Logger) (*Engine, error) { return &Engine{cfg: cfg}, nil }

// Middleware enforces the engine that current returns (nil: allow all)
// on requests that came in through an inbound capture listener
// (RequestInfo.Direction == proxy.Inbound): a denial answers 403 with
// body "RBAC: access denied" and flag UAEX, and is logged with the
// policy that denied.
func Middleware(current func() *Engine) proxy.Middleware {
	return func(next http.Handler) http.Handler { return next }
}
