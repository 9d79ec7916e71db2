package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"skiff.dev/skiff/examples/internal/app"
)

func TestCatalogueCallsReviewsWithTraceHeaders(t *testing.T) {
	var gotID string
	review := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotID = r.Header.Get("X-Request-Id")
		app.WriteReply(w, "v2", map[string]any{"path": r.URL.Path})
	}))
	defer review.Close()
	c := config{Version: "v1", Store: "S", Currency: "EUR", DBUser: "u", dbPassword: "p", ReviewURL: review.URL}
	h := routes(c, app.NewClient(time.Second), func() bool { return true })

	req := httptest.NewRequest(http.MethodGet, "/productms/product/catalogue/2", nil)
	req.Header.Set("X-Request-Id", "req-42")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "/productreviewms/productreview/2") {
		t.Fatalf("catalogue/2 = %d %s", rec.Code, rec.Body)
	}
	if gotID != "req-42" {
		t.Fatalf("review service saw X-Request-Id %q, want req-42", gotID)
	}
}

func TestRoutes(t *testing.T) {
	c := config{Version: "v1", Store: "S", Currency: "EUR", DBUser: "u", dbPassword: "secret", ReviewURL: "http://127.0.0.1:1"}
	h := routes(c, app.NewClient(time.Second), func() bool { return true })
	tests := []struct {
		name, path string
		code       int
		has, hasnt string
	}{
		{"catalogue", "/productms/product/catalogue", 200, `"Kettle"`, ""},
		{"version never shows the password", "/productms/product/version", 200, "credentials for u", "secret"},
		{"review down is reported", "/productms/product/catalogue/1", 200, `"error"`, ""},
		{"unknown product", "/productms/product/catalogue/9", 404, "no such product", ""},
		{"live", "/productms/check/live", 200, "productms v1 is live", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tt.path, nil))
			body := rec.Body.String()
			if rec.Code != tt.code || !strings.Contains(body, tt.has) || (tt.hasnt != "" && strings.Contains(body, tt.hasnt)) {
				t.Fatalf("GET %s = %d %s", tt.path, rec.Code, body)
			}
			var reply app.Reply
			if err := json.Unmarshal(rec.Body.Bytes(), &reply); err != nil || reply.Version != "v1" {
				t.Fatalf("envelope %s: %v", body, err)
			}
		})
	}
}
