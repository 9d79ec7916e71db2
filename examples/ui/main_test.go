package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"skiff.dev/skiff/examples/internal/app"
)

func TestPage(t *testing.T) {
	products := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		app.WriteReply(w, "v1", map[string]any{"store": "Test Shop", "currency": "EUR",
			"products": []map[string]any{{"id": 1, "name": "Kettle", "price": 29.9}}})
	}))
	defer products.Close()
	tests := []struct {
		name, version, url string
		has                []string
	}{
		{"v1", "v1", products.URL, []string{"Test Shop", "Kettle", "29.90 EUR", "ui v1 on pod-a", "#e8f0ff"}},
		{"v2 looks different", "v2", products.URL, []string{"ui v2 on pod-a — our new look", "#e9ffe8"}},
		{"catalogue down", "v1", "http://127.0.0.1:1", []string{"catalogue unavailable"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			routes(tt.version, "pod-a", tt.url, app.NewClient(time.Second), func() bool { return true }).
				ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/ui/", nil))
			for _, s := range tt.has {
				if !strings.Contains(rec.Body.String(), s) {
					t.Errorf("page lacks %q:\n%s", s, rec.Body)
				}
			}
		})
	}
}
