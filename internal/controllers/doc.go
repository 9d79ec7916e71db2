// Package controllers holds Skiff's reconcile loops, one package per loop
// (garbagecollector, namespace, ...). They all have the same shape:
//
//   - New(clients..., *slog.Logger) builds the controller and does no I/O;
//   - Run(ctx, workers) starts informers, waits for their caches, runs
//     workers until ctx ends and returns nil then (an error only when it
//     could not start);
//   - event handlers only enqueue keys; workers re-read state and act
//     idempotently, so a controller killed at any point and started again
//     finishes the job from what the API holds;
//   - they talk to the API server only, through client-go, like any
//     out-of-process controller would.
//
// Only internal/daemon wires them up. This package itself is empty.
package controllers
