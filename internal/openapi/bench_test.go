package openapi

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkBuild measures what the first OpenAPI requests cost a fresh
// server for the resources Skiff serves.
//
//   - documents: build the v2 document and every v3 document (Go structs).
//   - serve: that plus what the first requests add: v2 as JSON and
//     protobuf, the v3 index and every v3 document as JSON. Reports the
//     sizes of the documents (uncompressed).
//   - new+install: what server start pays (must stay near zero).
func BenchmarkBuild(b *testing.B) {
	rs := served()
	b.Run("documents", func(b *testing.B) {
		for b.Loop() {
			s := New(rs)
			if _, _, err := s.v2.Get(); err != nil {
				b.Fatal(err)
			}
			if _, _, err := s.v3.Get(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("serve", func(b *testing.B) {
		var v2JSON, v2Proto, v3JSON int
		for b.Loop() {
			s := New(rs)
			mux := http.NewServeMux()
			s.Install(mux)
			serve := func(path, accept string) int {
				req := httptest.NewRequest(http.MethodGet, path, nil)
				req.Header.Set("Accept", accept)
				rec := httptest.NewRecorder()
				mux.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("GET %s: %d", path, rec.Code)
				}
				return rec.Body.Len()
			}
			v2JSON = serve("/openapi/v2", "application/json")
			v2Proto = serve("/openapi/v2", "application/com.github.proto-openapi.spec.v2@v1.0+protobuf")
			v3JSON = serve("/openapi/v3", "application/json")
			for _, gv := range s.gvs {
				v3JSON += serve("/openapi/v3/"+v3Key(gv), "application/json")
			}
		}
		b.ReportMetric(float64(v2JSON), "v2-json-B")
		b.ReportMetric(float64(v2Proto), "v2-proto-B")
		b.ReportMetric(float64(v3JSON), "v3-json-B")
	})
	b.Run("new+install", func(b *testing.B) {
		for b.Loop() {
			New(rs).Install(http.NewServeMux())
		}
	})
}
