package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRoutes(t *testing.T) {
	ready := true
	h := routes("v1.1", "pod-a", func() bool { return ready })
	tests := []struct {
		name, path string
		code       int
		body       string
	}{
		{"hello", "/", 200, "Hello from hello v1.1 on pod pod-a"},
		{"burn", "/burn?ms=1", 200, "burned 1ms"},
		{"bad burn", "/burn?ms=x", 400, "ms must be"},
		{"live", "/live", 200, "ok"},
		{"ready", "/ready", 200, "ok"},
		{"unknown", "/nope", 404, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))
			body, _ := io.ReadAll(rec.Body)
			if rec.Code != tt.code || !strings.Contains(string(body), tt.body) {
				t.Fatalf("GET %s = %d %q, want %d containing %q", tt.path, rec.Code, body, tt.code, tt.body)
			}
		})
	}
	ready = false
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/ready", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("draining /ready = %d, want 503", rec.Code)
	}
}
