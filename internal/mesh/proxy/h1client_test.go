package proxy

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
)

// rawBackend answers each request on a connection with body and then,
// if closeAfter, closes the connection without saying so (as an upstream
// whose keep-alive timeout expired does).
func rawBackend(t *testing.T, closeAfter bool, answer func(req *http.Request) string) (string, *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var conns atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				for {
					req, err := http.ReadRequest(br)
					if err != nil {
						return
					}
					_, _ = io.Copy(io.Discard, req.Body)
					if _, err := io.WriteString(c, answer(req)); err != nil || closeAfter {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String(), &conns
}

func TestPooledConnectionClosedByUpstream(t *testing.T) {
	addr, conns := rawBackend(t, true, func(*http.Request) string {
		return "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	})
	_, base := start(t, simple([]Route{{Clusters: to("c"), Retry: &RetryPolicy{}}}, Cluster{Name: "c", Endpoints: eps(addr)}))
	for i := range 5 {
		if code, _, body := get(t, nil, "GET", base+"/", nil, ""); code != 200 || body != "ok" {
			t.Fatalf("request %d: %d %q", i, code, body)
		}
	}
	if n := conns.Load(); n < 5 {
		t.Errorf("upstream saw %d connections for 5 requests on closing connections", n)
	}
}

func TestInformationalAndBodylessAnswers(t *testing.T) {
	addr, conns := rawBackend(t, false, func(req *http.Request) string {
		switch req.URL.Path {
		case "/hints":
			return "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n" +
				"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal"
		case "/empty":
			return "HTTP/1.1 204 No Content\r\n\r\n"
		case "/head":
			return "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n"
		case "/chunked":
			return "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
		}
		return "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody"
	})
	_, base := start(t, simple([]Route{{Clusters: to("c")}}, Cluster{Name: "c", Endpoints: eps(addr)}))
	for _, tc := range []struct {
		method, path, want string
		code               int
	}{
		{"GET", "/hints", "final", 200},
		{"GET", "/empty", "", 204},
		{"HEAD", "/head", "", 200},
		{"GET", "/chunked", "abcde", 200},
		{"GET", "/plain", "body", 200},
	} {
		code, _, body := get(t, nil, tc.method, base+tc.path, nil, "")
		if code != tc.code || body != tc.want {
			t.Errorf("%s %s: %d %q, want %d %q", tc.method, tc.path, code, body, tc.code, tc.want)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("upstream saw %d connections, want 1 reused", n)
	}
}
