// Command hello is the workshop's hello-world web app: it answers with its
// version (env VERSION, v1.0 or v1.1) and the pod that served the request,
// so rollouts, canaries and load balancing are visible with curl.
//
//	GET /            Hello from hello v1.0 on pod hello-5d9c7-abcde
//	GET /burn?ms=N   spin the CPU for N ms (drives the autoscaling demo)
//	GET /live /ready probes
package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"time"

	"skiff.dev/skiff/examples/internal/app"
)

func main() {
	version := app.Env("VERSION", "v1.0")
	log := app.Logger("hello", version)
	srv := &app.Server{Addr: ":" + app.Env("PORT", "8080"), Log: log}
	srv.Handler = routes(version, app.Env("POD_NAME", app.Hostname()), srv.Ready)
	if err := srv.Run(context.Background()); err != nil {
		log.Error("serve", "err", err)
		os.Exit(1)
	}
}

func routes(version, pod string, ready func() bool) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "Hello from hello %s on pod %s\n", version, pod)
	})
	mux.HandleFunc("GET /burn", func(w http.ResponseWriter, r *http.Request) {
		ms, err := strconv.Atoi(r.URL.Query().Get("ms"))
		if err != nil || ms < 0 || ms > 10000 {
			http.Error(w, "ms must be 0..10000", http.StatusBadRequest)
			return
		}
		n := burn(time.Duration(ms) * time.Millisecond)
		fmt.Fprintf(w, "burned %dms (%d rounds) on pod %s\n", ms, n, pod)
	})
	mux.HandleFunc("GET /live", app.Probe(func() bool { return true }))
	mux.HandleFunc("GET /ready", app.Probe(ready))
	return mux
}

// burn keeps one CPU busy for d.
func burn(d time.Duration) int {
	n, x := 0, uint64(1)
	for end := time.Now().Add(d); time.Now().Before(end); n++ {
		for i := 0; i < 1000; i++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	if x == 0 { // keep the loop from being optimised away
		n++
	}
	return n
}
