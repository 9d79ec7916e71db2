package agent

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

func TestGRPCProbe(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	hs := health.NewServer()
	healthpb.RegisterHealthServer(srv, hs)
	go srv.Serve(l)
	defer srv.Stop()
	hs.SetServingStatus("db", healthpb.HealthCheckResponse_NOT_SERVING)
	port := int32(l.Addr().(*net.TCPAddr).Port)
	probe := func(service *string) (probeResult, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		return grpcProbe(ctx, &corev1.GRPCAction{Port: port, Service: service}, "127.0.0.1")
	}
	if r, out := probe(nil); r != resultSuccess {
		t.Errorf("overall health: %v %s", r, out)
	}
	db := "db"
	if r, out := probe(&db); r != resultFailure || out != `service unhealthy (responded with "NOT_SERVING")` {
		t.Errorf("db: %v %q", r, out)
	}
	hs.SetServingStatus("db", healthpb.HealthCheckResponse_SERVING)
	if r, out := probe(&db); r != resultSuccess {
		t.Errorf("db serving: %v %s", r, out)
	}
	srv.Stop()
	if r, out := probe(nil); r != resultFailure || out == "" {
		t.Errorf("stopped server: %v %q", r, out)
	}
}

func TestHTTPAndTCPProbes(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.Write([]byte("fine"))
		case "/redirect":
			http.Redirect(w, r, "/ok", http.StatusFound)
		case "/away":
			http.Redirect(w, r, "http://192.0.2.99:1/elsewhere", http.StatusFound)
		default:
			http.Error(w, "broken", http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	_, portStr, _ := net.SplitHostPort(srv.Listener.Addr().String())
	port, _ := strconv.Atoi(portStr)
	c := &corev1.Container{Ports: []corev1.ContainerPort{{Name: "web", ContainerPort: int32(port)}}}
	cases := []struct {
		path string
		port intstr.IntOrString
		want probeResult
		out  string
	}{
		{"/ok", intstr.FromInt32(int32(port)), resultSuccess, "fine"},
		{"ok", intstr.FromString("web"), resultSuccess, "fine"},
		{"/redirect", intstr.FromString("web"), resultSuccess, "fine"},
		{"/away", intstr.FromString("web"), resultSuccess, ""}, // a redirect off the host is not followed
		{"/broken", intstr.FromString("web"), resultFailure, "HTTP probe failed with statuscode: 500"},
		{"/ok", intstr.FromString("nope"), resultFailure, "couldn't find port: nope in "},
	}
	for _, tc := range cases {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		r, out := httpProbe(ctx, &corev1.HTTPGetAction{Path: tc.path, Port: tc.port}, c, "127.0.0.1")
		cancel()
		if r != tc.want || !strings.HasPrefix(out, tc.out) {
			t.Errorf("GET %s port %v: %v %q, want %v %q", tc.path, tc.port.String(), r, out, tc.want, tc.out)
		}
	}
	ctx := context.Background()
	if r, out := tcpProbe(ctx, &corev1.TCPSocketAction{Port: intstr.FromString("web")}, c, "127.0.0.1"); r != resultSuccess {
		t.Errorf("tcp: %v %s", r, out)
	}
	srv.Close()
	if r, out := tcpProbe(ctx, &corev1.TCPSocketAction{Port: intstr.FromString("web")}, c, "127.0.0.1"); r != resultFailure || !strings.Contains(out, "connection refused") {
		t.Errorf("tcp to a closed port: %v %s", r, out)
	}
}
