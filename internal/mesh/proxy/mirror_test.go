package proxy

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

type shadowSeen struct {
	host, path, body, hdr string
}

func TestMirrors(t *testing.T) {
	big := strings.Repeat("x", MaxRetryBody+1)
	for _, tc := range []struct {
		name     string
		percent  float64
		random   func(*Options)
		shadow   http.HandlerFunc // nil: records and answers
		method   string
		host     string
		body     string
		want     *shadowSeen
		wantNone bool
	}{
		{name: "get", percent: 100, random: never, method: "GET", host: "svc.test",
			want: &shadowSeen{host: "svc.test-shadow", path: "/new/a?q=1", hdr: "yes"}},
		{name: "port kept after the suffix", percent: 100, random: never, method: "GET", host: "svc.test:8080",
			want: &shadowSeen{host: "svc.test-shadow:8080", path: "/new/a?q=1", hdr: "yes"}},
		{name: "small body", percent: 100, random: never, method: "POST", host: "svc.test", body: "payload",
			want: &shadowSeen{host: "svc.test-shadow", path: "/new/a?q=1", body: "payload", hdr: "yes"}},
		{name: "drawn share", percent: 30, random: always, method: "GET", host: "svc.test",
			want: &shadowSeen{host: "svc.test-shadow", path: "/new/a?q=1", hdr: "yes"}},
		{name: "not drawn", percent: 30, random: never, method: "GET", host: "svc.test", wantNone: true},
		{name: "large body not mirrored", percent: 100, random: always, method: "POST", host: "svc.test", body: big, wantNone: true},
		{name: "failing shadow does not matter", percent: 100, random: always, method: "GET", host: "svc.test",
			shadow: func(w http.ResponseWriter, r *http.Request) { panic(http.ErrAbortHandler) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seen := make(chan shadowSeen, 1)
			h := tc.shadow
			if h == nil {
				h = func(w http.ResponseWriter, r *http.Request) {
					b, _ := io.ReadAll(r.Body)
					seen <- shadowSeen{host: r.Host, path: r.URL.RequestURI(), body: string(b), hdr: r.Header.Get("X-Route")}
					w.WriteHeader(http.StatusInternalServerError) // dropped
				}
			}
			shadow := newBackend(t, "shadow", h)
			main := newBackend(t, "main", func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				_, _ = io.WriteString(w, "main")
			})
			rt := Route{Match: RouteMatch{Path: PathMatch{Kind: PathPrefix, Value: "/old"}}, Clusters: to("main"),
				Rewrite:        &Rewrite{Prefix: "/new"},
				RequestHeaders: HeaderOps{Set: []Header{{Name: "X-Route", Value: "yes"}}},
				Mirrors:        []Mirror{{Cluster: "shadow", Percent: tc.percent}}}
			_, base := start(t, simple([]Route{rt}, Cluster{Name: "main", Endpoints: eps(main.addr())},
				Cluster{Name: "shadow", Endpoints: eps(shadow.addr())}), tc.random)
			code, _, body := get(t, nil, tc.method, base+"/old/a?q=1", map[string]string{"Host": tc.host}, tc.body)
			if code != 200 || body != "main" {
				t.Fatalf("main request: %d %q", code, body)
			}
			switch {
			case tc.want != nil:
				select {
				case got := <-seen:
					if got != *tc.want {
						t.Errorf("shadow saw %+v, want %+v", got, *tc.want)
					}
				case <-time.After(5 * time.Second):
					t.Fatal("shadow saw nothing in 5s")
				}
			case tc.wantNone:
				// A copy goes out before the main request is forwarded;
				// one more request through the proxy leaves it time.
				get(t, nil, "GET", base+"/other", nil, "")
				time.Sleep(50 * time.Millisecond)
				if _, hits := shadow.seen(); hits != 0 {
					t.Errorf("shadow saw %d requests, want none", hits)
				}
			}
		})
	}
}

// A shadow that never answers delays nothing, and copies beyond the
// bound are dropped rather than queued.
func TestMirrorNeverBlocks(t *testing.T) {
	release := make(chan struct{})
	shadow := newBackend(t, "shadow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	main := newBackend(t, "main", nil)
	p, base := start(t, simple([]Route{{Clusters: to("main"), Mirrors: []Mirror{{Cluster: "shadow", Percent: 100}}}},
		Cluster{Name: "main", Endpoints: eps(main.addr())}, Cluster{Name: "shadow", Endpoints: eps(shadow.addr())}))
	t.Cleanup(func() { close(release) })
	for i := range maxMirrorsInFlight + 20 {
		if code, _, body := get(t, nil, "GET", base+"/", nil, ""); code != 200 || body != "main" {
			t.Fatalf("request %d: %d %q", i, code, body)
		}
	}
	rt := p.snap.Load().listeners["main"].hosts.any.routes[0]
	if n := rt.mirrors.inflight.Load(); n > maxMirrorsInFlight {
		t.Errorf("%d copies in flight, bound is %d", n, maxMirrorsInFlight)
	}
}
