package capturetest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	"skiff.dev/skiff/internal/mesh/proxy"
)

// benchConfig captures svcIP:80 as HTTP (to web) and svcIP:5432 as TCP
// (to echo).
func benchConfig(web, echo string) *proxy.Config {
	return &proxy.Config{
		Version:     "bench",
		RouteTables: []proxy.RouteTable{catchAll("web-80", "web")},
		Clusters: []proxy.Cluster{{Name: "web", Endpoints: []proxy.Endpoint{{Address: web}}},
			{Name: "echo", TCP: true, Endpoints: []proxy.Endpoint{{Address: echo}}}},
		Listeners: []proxy.Listener{{Name: "virtualOutbound", Address: "0.0.0.0:" + strconv.Itoa(outboundPort),
			Capture: &proxy.Capture{Direction: proxy.Outbound, Chains: []proxy.FilterChain{
				{Name: "web", Match: proxy.ChainMatch{Port: 80, Addresses: []string{svcIP}}, RouteTable: "web-80"},
				{Name: "echo", Match: proxy.ChainMatch{Port: 5432, Addresses: []string{svcIP}}, TCPCluster: "echo"},
			}}}},
	}
}

func echoServer(b testing.TB) string {
	ln := listen(b, "127.0.0.1:0")
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); _, _ = io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String()
}

func quietProxy(b *testing.B, cfg *proxy.Config) {
	b.Helper()
	p := proxy.New(proxy.Options{Logger: slog.New(slog.DiscardHandler), ShutdownTimeout: time.Second})
	if err := p.Update(cfg); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	<-p.Ready()
}

// BenchmarkCaptureHTTP is one keep-alive GET through the outbound capture
// listener's HTTP chain (REDIRECT, SO_ORIGINAL_DST at connect only).
func BenchmarkCaptureHTTP(b *testing.B) {
	netnsSetup(b)
	web := httpBackend(b, "127.0.0.1:0", "web")
	quietProxy(b, benchConfig(web, echoServer(b)))
	c := dialFromClient(b, svcIP+":80")
	br := bufio.NewReader(c)
	req := []byte("GET / HTTP/1.1\r\nHost: web\r\n\r\n")
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		res, err := http.ReadResponse(br, nil)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
	}
}

// BenchmarkCaptureTCPConnect is a new connection through a TCP chain:
// accept, original destination, chain match, upstream connect, one echo.
func BenchmarkCaptureTCPConnect(b *testing.B) {
	netnsSetup(b)
	quietProxy(b, benchConfig(echoServer(b), echoServer(b)))
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(clientIP)}}
	buf := make([]byte, 1)
	for b.Loop() {
		c, err := d.Dial("tcp", svcIP+":5432")
		if err != nil {
			b.Fatal(err)
		}
		if _, err := c.Write([]byte{'x'}); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

// BenchmarkCaptureTCPThroughput echoes 64 KiB per op over one
// established TCP chain connection.
func BenchmarkCaptureTCPThroughput(b *testing.B) {
	netnsSetup(b)
	quietProxy(b, benchConfig(echoServer(b), echoServer(b)))
	c := dialFromClient(b, svcIP+":5432")
	_ = c.SetDeadline(time.Time{})
	msg := make([]byte, 64<<10)
	got := make([]byte, len(msg))
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		go func() { _, _ = c.Write(msg) }()
		if _, err := io.ReadFull(c, got); err != nil {
			b.Fatal(fmt.Errorf("read: %w", err))
		}
	}
}
