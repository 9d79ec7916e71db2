package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"
)

func TestReviews(t *testing.T) {
	tests := []struct {
		name, version, path string
		code                int
		stars               bool
	}{
		{"v1 has no stars", "v1", "/productreviewms/productreview/1", 200, false},
		{"v2 has stars", "v2", "/productreviewms/productreview/1", 200, true},
		{"slow path answers", "v2", "/productreviewms/productreview/timeout/3", 200, true},
		{"bad id", "v1", "/productreviewms/productreview/x", 400, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			routes(tt.version, time.Millisecond, func() bool { return true }).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))
			if rec.Code != tt.code {
				t.Fatalf("code %d, want %d: %s", rec.Code, tt.code, rec.Body)
			}
			if tt.code != 200 {
				return
			}
			var reply struct {
				Version  string
				Response struct{ Reviews []Review }
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &reply); err != nil {
				t.Fatal(err)
			}
			if reply.Version != tt.version || len(reply.Response.Reviews) == 0 {
				t.Fatalf("reply %+v", reply)
			}
			if got := reply.Response.Reviews[0].Stars > 0; got != tt.stars {
				t.Fatalf("stars present = %v, want %v", got, tt.stars)
			}
		})
	}
}

func TestLiveShowsVersion(t *testing.T) {
	rec := httptest.NewRecorder()
	routes("v2", 0, nil).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/productreviewms/check/live", nil))
	var reply struct{ Version, Response string }
	json.Unmarshal(rec.Body.Bytes(), &reply)
	if reply.Version != "v2" || reply.Response != "productreviewms v2 is live" {
		t.Fatalf("live = %s", rec.Body)
	}
}

func TestFlakyFailsEveryOtherCall(t *testing.T) {
	h := routes("v1", 0, nil)
	var codes []int
	for range 4 {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/productreviewms/productreview/flaky/1", nil))
		codes = append(codes, rec.Code)
	}
	if want := []int{503, 200, 503, 200}; !slices.Equal(codes, want) {
		t.Fatalf("codes %v, want %v", codes, want)
	}
}
