// Command backend is the upstream of the ingress benchmark: an HTTP
// server answering every request with a fixed body.
package main

import (
	"bytes"
	"flag"
	"log"
	"net/http"
	"strconv"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:18080", "address")
	size := flag.Int("size", 1024, "response body bytes")
	flag.Parse()
	body := bytes.Repeat([]byte("x"), *size)
	length := []string{strconv.Itoa(len(body))}
	ctype := []string{"text/plain"}
	srv := &http.Server{Addr: *addr, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h["Content-Length"] = length
		h["Content-Type"] = ctype
		_, _ = w.Write(body)
	})}
	log.Fatal(srv.ListenAndServe())
}
