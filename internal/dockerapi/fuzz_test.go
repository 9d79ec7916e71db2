package dockerapi_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"skiff.dev/skiff/internal/dockerapi"
	"skiff.dev/skiff/internal/dockerapi/dockerapitest"
)

// FuzzHandler sends arbitrary requests through the whole handler (over
// the fake backend): nothing may panic, which the server would answer
// with a 500 "internal server error".
func FuzzHandler(f *testing.F) {
	seeds := []struct{ method, target, body string }{
		{"GET", "/containers/json?all=1&filters={\"status\":[\"running\"]}", ""},
		{"GET", "/v1.41/containers/json?filters={\"label\":{\"a\":true}}&limit=x", ""},
		{"POST", "/containers/create?name=a", `{"Image":"busybox","Cmd":["true"]}`},
		{"POST", "/containers/create", `{"Image":"busybox","HostConfig":{"NetworkMode":"default"},"NetworkingConfig":{"EndpointsConfig":{"default":null}}}`},
		{"POST", "/v1.43/containers/create", `{"Image":"busybox","Cmd":["x"],"MacAddress":"zz"}`},
		{"POST", "/containers/a/start", ""},
		{"POST", "/containers/a/stop?t=-1&signal=HUP", ""},
		{"GET", "/containers/a/logs?stdout=1&since=1.5&until=0&tail=-3", ""},
		{"GET", "/containers/a/stats?stream=0&one-shot=1", ""},
		{"POST", "/containers/a/wait?condition=removed", ""},
		{"POST", "/containers/a/resize?h=99999999999&w=1", ""},
		{"POST", "/commit?container=a&repo=x&tag=y&changes=CMD%20x", `{"Cmd":["a"]}`},
		{"POST", "/containers/a/exec", `{"Cmd":["echo"],"Detach":true}`},
		{"POST", "/exec/x/start", `{"Detach":true}`},
		{"GET", "/events?since=1&until=2&filters={}", ""},
		{"POST", "/images/create?fromImage=busybox&tag=sha256:abc", ""},
		{"POST", "/images/busybox/tag?repo=a&tag=b", ""},
		{"DELETE", "/images/a/b/c?force=1", ""},
		{"GET", "/images/get?names=busybox&names=x", ""},
		{"POST", "/build?t=a&buildargs={\"a\":null}&labels={\"x\":\"y\"}", "not a tar"},
		{"POST", "/images/load?quiet=0", "\x1f\x8b garbage"},
		{"POST", "/networks/create", `{"Name":"n","IPAM":{"Config":[{"Subnet":"10.0.0.0/8"}]}}`},
		{"POST", "/networks/bridge/connect", `{"Container":"a","EndpointConfig":{"IPAddress":"x"}}`},
		{"POST", "/volumes/create", `{"Name":"v","DriverOpts":{"a":"b"}}`},
		{"DELETE", "/volumes/v?force=yes", ""},
		{"HEAD", "/_ping", ""},
		{"GET", "/v1.9999999999999999999/_ping", ""},
	}
	for _, s := range seeds {
		f.Add(s.method, s.target, s.body)
	}
	fake := dockerapitest.New()
	srv := dockerapi.New(fake, dockerapi.Options{Logger: slog.New(slog.DiscardHandler)})
	h := srv.Handler()
	f.Fuzz(func(t *testing.T, method, target, body string) {
		if !strings.HasPrefix(target, "/") {
			target = "/" + target
		}
		req, err := http.NewRequest(method, "http://docker"+target, strings.NewReader(body))
		if err != nil {
			return // not a request a client could send
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		defer cancel()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req.WithContext(ctx))
		if rec.Code == http.StatusInternalServerError && strings.Contains(rec.Body.String(), "internal server error") {
			t.Fatalf("%s %s %q: the server panicked", method, target, body)
		}
	})
}
