// Command productreviewms serves product reviews. Version v1 answers plain
// reviews; v2 adds star ratings, so routing rules and canaries show which
// version answered.
//
//	GET /productreviewms/productreview/{id}
//	GET /productreviewms/productreview/timeout/{id}  (answers after 5 s: timeout demos)
//	GET /productreviewms/productreview/flaky/{id}    (every other call fails with 503: retry demos)
//	GET /productreviewms/check/live                  (includes the version)
//	GET /productreviewms/check/ready
package main

import (
	"context"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"skiff.dev/skiff/examples/internal/app"
)

// Review is one review of a product.
type Review struct {
	Reviewer string `json:"reviewer"`
	Text     string `json:"text"`
	Stars    int    `json:"stars,omitempty"` // v2 only
}

var reviews = map[int][]Review{
	1: {{"ana", "Solid and simple.", 5}, {"bo", "Does what it says.", 4}},
	2: {{"chen", "Fast delivery, works fine.", 4}},
	3: {{"dara", "Too loud for my taste.", 2}, {"eli", "Great value.", 4}},
}

func main() {
	version := app.Env("VERSION", "v1")
	log := app.Logger("productreviewms", version)
	srv := &app.Server{Addr: ":" + app.Env("PORT", "8080"), Log: log}
	srv.Handler = routes(version, 5*time.Second, srv.Ready)
	if err := srv.Run(context.Background()); err != nil {
		log.Error("serve", "err", err)
		os.Exit(1)
	}
}

func routes(version string, slow time.Duration, ready func() bool) http.Handler {
	mux := http.NewServeMux()
	answer := func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.Atoi(r.PathValue("id"))
		if err != nil {
			app.WriteJSON(w, http.StatusBadRequest, app.Reply{Version: version, Response: "id must be a number"})
			return
		}
		app.WriteReply(w, version, map[string]any{"productId": id, "reviews": forVersion(version, reviews[id])})
	}
	mux.HandleFunc("GET /productreviewms/productreview/{id}", answer)
	mux.HandleFunc("GET /productreviewms/productreview/timeout/{id}", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-time.After(slow):
			answer(w, r)
		case <-r.Context().Done():
		}
	})
	var calls atomic.Uint64
	mux.HandleFunc("GET /productreviewms/productreview/flaky/{id}", func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1)%2 == 1 {
			app.WriteJSON(w, http.StatusServiceUnavailable, app.Reply{Version: version, Response: "flaky: failing this call"})
			return
		}
		answer(w, r)
	})
	mux.HandleFunc("GET /productreviewms/check/live", func(w http.ResponseWriter, r *http.Request) {
		app.WriteReply(w, version, "productreviewms "+version+" is live")
	})
	mux.HandleFunc("GET /productreviewms/check/ready", app.Probe(ready))
	return mux
}

// forVersion drops the star ratings in v1.
func forVersion(version string, in []Review) []Review {
	out := make([]Review, 0, len(in))
	for _, r := range in {
		if version == "v1" {
			r.Stars = 0
		}
		out = append(out, r)
	}
	return out
}
