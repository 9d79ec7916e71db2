package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sync/atomic"
	"testing"
)

func TestRunCountsKinds(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n.Add(1)%4 == 0 {
			fmt.Fprintln(w, "<p>ui v2 on b</p>")
			return
		}
		fmt.Fprintln(w, "<p>ui v1 on a</p>")
	}))
	defer srv.Close()
	got := run(context.Background(), srv.URL, 3, 200, regexp.MustCompile(`ui v[0-9]`))
	if got["ui v1"]+got["ui v2"] != 200 || got["ui v2"] != 50 {
		t.Fatalf("counts = %v, want 150 v1 and 50 v2", got)
	}
	lines := run(context.Background(), srv.URL, 1, 4, nil)
	if lines["<p>ui v1 on a</p>"] != 3 || lines["<p>ui v2 on b</p>"] != 1 {
		t.Fatalf("first-line counts = %v", lines)
	}
}

func TestCheckSplit(t *testing.T) {
	counts := map[string]int{"ui v1": 140, "ui v2": 60}
	tests := []struct {
		want string
		ok   bool
	}{
		{"ui v1=75,ui v2=25", true},
		{"ui v1=50,ui v2=50", false},
		{"ui v3=10", true}, // 0% is within 15 points of 10%
		{"ui v1", false},
	}
	for _, tt := range tests {
		if err := checkSplit(counts, tt.want, 15); (err == nil) != tt.ok {
			t.Errorf("checkSplit(%q) = %v, want ok=%v", tt.want, err, tt.ok)
		}
	}
}
