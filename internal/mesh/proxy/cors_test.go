package proxy

import (
	"net/http"
	"testing"
	"time"
)

func TestCORS(t *testing.T) {
	policy := &CORSPolicy{
		AllowOrigins:     []StringMatch{{Kind: StringExact, Value: "https://app.example"}, {Kind: StringSuffix, Value: ".trusted.example"}},
		AllowMethods:     []string{"GET", "POST"},
		AllowHeaders:     []string{"X-Token", "Content-Type"},
		ExposeHeaders:    []string{"X-Backend"},
		MaxAge:           10 * time.Minute,
		AllowCredentials: true,
	}
	preflight := func(origin string) map[string]string {
		return map[string]string{"Origin": origin, "Access-Control-Request-Method": "POST"}
	}
	for _, tc := range []struct {
		name     string
		policy   *CORSPolicy
		method   string
		hdr      map[string]string
		wantCode int
		wantUp   bool
		want     map[string]string // "" means absent
	}{
		{name: "preflight answered", policy: policy, method: "OPTIONS", hdr: preflight("https://app.example"), wantCode: 200,
			want: map[string]string{"Access-Control-Allow-Origin": "https://app.example", "Access-Control-Allow-Methods": "GET,POST",
				"Access-Control-Allow-Headers": "X-Token,Content-Type", "Access-Control-Max-Age": "600",
				"Access-Control-Allow-Credentials": "true", "X-Backend": ""}},
		{name: "preflight by suffix", policy: policy, method: "OPTIONS", hdr: preflight("https://a.trusted.example"), wantCode: 200,
			want: map[string]string{"Access-Control-Allow-Origin": "https://a.trusted.example"}},
		{name: "preflight from another origin goes upstream", policy: policy, method: "OPTIONS", hdr: preflight("https://evil.example"),
			wantCode: 200, wantUp: true,
			want: map[string]string{"Access-Control-Allow-Origin": "", "Access-Control-Allow-Methods": "", "X-Backend": "up"}},
		{name: "actual request decorated", policy: policy, method: "GET", hdr: map[string]string{"Origin": "https://app.example"},
			wantCode: 200, wantUp: true,
			want: map[string]string{"Access-Control-Allow-Origin": "https://app.example", "Access-Control-Allow-Credentials": "true",
				"Access-Control-Expose-Headers": "X-Backend", "Access-Control-Allow-Methods": ""}},
		{name: "upstream's own allow-origin replaced", policy: policy, method: "GET",
			hdr: map[string]string{"Origin": "https://app.example", "X-Want-Acao": "1"}, wantCode: 200, wantUp: true,
			want: map[string]string{"Access-Control-Allow-Origin": "https://app.example"}},
		{name: "other origin undecorated", policy: policy, method: "GET", hdr: map[string]string{"Origin": "https://evil.example"},
			wantCode: 200, wantUp: true,
			want: map[string]string{"Access-Control-Allow-Origin": "", "Access-Control-Expose-Headers": ""}},
		{name: "no origin", policy: policy, method: "GET", wantCode: 200, wantUp: true,
			want: map[string]string{"Access-Control-Allow-Origin": ""}},
		{name: "plain OPTIONS goes upstream", policy: policy, method: "OPTIONS", hdr: map[string]string{"Origin": "https://app.example"},
			wantCode: 200, wantUp: true, want: map[string]string{"X-Backend": "up", "Access-Control-Allow-Origin": "https://app.example"}},
		{name: "star admits any origin", policy: &CORSPolicy{AllowOrigins: []StringMatch{{Kind: StringExact, Value: "*"}}},
			method: "OPTIONS", hdr: preflight("https://any.example"), wantCode: 200,
			want: map[string]string{"Access-Control-Allow-Origin": "https://any.example", "Access-Control-Allow-Credentials": "",
				"Access-Control-Max-Age": ""}},
		{name: "star methods and headers echo the preflight", policy: &CORSPolicy{AllowOrigins: []StringMatch{{Kind: StringPresent}},
			AllowMethods: []string{"*"}, AllowHeaders: []string{"*"}}, method: "OPTIONS",
			hdr:      map[string]string{"Origin": "https://x", "Access-Control-Request-Method": "PATCH", "Access-Control-Request-Headers": "x-a, x-b"},
			wantCode: 200, want: map[string]string{"Access-Control-Allow-Methods": "PATCH", "Access-Control-Allow-Headers": "x-a, x-b"}},
		{name: "no allowed origins", policy: &CORSPolicy{AllowMethods: []string{"GET"}}, method: "OPTIONS",
			hdr: preflight("https://app.example"), wantCode: 200, wantUp: true,
			want: map[string]string{"Access-Control-Allow-Origin": "", "X-Backend": "up"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			up := newBackend(t, "up", func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("X-Want-Acao") != "" {
					w.Header().Set("Access-Control-Allow-Origin", "*")
				}
			})
			_, base := start(t, simple([]Route{{Clusters: to("c"), CORS: tc.policy}}, Cluster{Name: "c", Endpoints: eps(up.addr())}))
			code, h, _ := get(t, nil, tc.method, base+"/", tc.hdr, "")
			if code != tc.wantCode {
				t.Errorf("status %d, want %d", code, tc.wantCode)
			}
			if _, hits := up.seen(); (hits > 0) != tc.wantUp {
				t.Errorf("upstream saw %d requests, want forwarded=%t", hits, tc.wantUp)
			}
			for k, v := range tc.want {
				if got := h.Get(k); got != v {
					t.Errorf("%s: %q, want %q", k, got, v)
				}
			}
		})
	}
}

// Faults come first (Istio puts Envoy's fault filter before its CORS
// filter): an aborted request, preflight or not, gets no CORS headers.
func TestCORSAfterFault(t *testing.T) {
	up := newBackend(t, "up", nil)
	_, base := start(t, simple([]Route{{Clusters: to("c"),
		CORS:  &CORSPolicy{AllowOrigins: []StringMatch{{Kind: StringPrefix, Value: "https://"}}},
		Fault: &Fault{Abort: &FaultAbort{Status: 503, Percent: 100}}}}, Cluster{Name: "c", Endpoints: eps(up.addr())}))
	for _, method := range []string{"GET", "OPTIONS"} {
		code, h, _ := get(t, nil, method, base+"/", map[string]string{"Origin": "https://x.example", "Access-Control-Request-Method": "GET"}, "")
		if code != 503 || h.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("%s: %d with allow-origin %q, want 503 without", method, code, h.Get("Access-Control-Allow-Origin"))
		}
	}
}
