package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"skiff.dev/skiff/internal/runtime"
	"skiff.dev/skiff/internal/version"
)

// maxProbeOutput bounds what a probe or hook keeps of its output.
const maxProbeOutput = 10 << 10

// limitedBuffer keeps the first maxProbeOutput bytes written to it.
type limitedBuffer struct{ bytes.Buffer }

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := maxProbeOutput - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// execIn runs cmd in a container and returns its exit code and combined
// output.
func (a *Agent) execIn(ctx context.Context, id string, cmd []string) (int, string, error) {
	var out limitedBuffer
	code, err := a.rt.Exec(ctx, id, cmd, runtime.Streams{Stdout: &out, Stderr: &out}, false, nil)
	return code, out.String(), err
}

// resolvePort turns a probe's or hook's port (a number or the name of one
// of the container's ports) into a number.
func resolvePort(p intstr.IntOrString, c *corev1.Container) (int, error) {
	if p.Type == intstr.Int {
		if p.IntVal <= 0 || p.IntVal > 65535 {
			return 0, fmt.Errorf("invalid port number: %d", p.IntVal)
		}
		return int(p.IntVal), nil
	}
	if n, err := strconv.Atoi(p.StrVal); err == nil {
		return n, nil
	}
	if c != nil {
		for _, cp := range c.Ports {
			if cp.Name == p.StrVal {
				return int(cp.ContainerPort), nil
			}
		}
	}
	return 0, fmt.Errorf("couldn't find port: %v in %v", p.StrVal, containerName(c))
}

func containerName(c *corev1.Container) string {
	if c == nil {
		return ""
	}
	return c.Name
}

// insecureTLS is the TLS configuration of HTTPS probes and hooks: like
// the kubelet's, it does not verify the pod's certificate.
func insecureTLS() *tls.Config { return &tls.Config{InsecureSkipVerify: true} }

// probeUserAgent is the User-Agent of HTTP probes, kube-probe/<major.minor>.
var probeUserAgent = func() string {
	v := strings.TrimPrefix(version.Kubernetes, "v")
	if parts := strings.SplitN(v, ".", 3); len(parts) >= 2 {
		v = parts[0] + "." + parts[1]
	}
	return "kube-probe/" + v
}()

// httpGet performs an httpGet action against the pod (or its host) and
// returns the response's status code and the start of its body.
func httpGet(ctx context.Context, g *corev1.HTTPGetAction, c *corev1.Container, podIP string) (int, string, error) {
	port, err := resolvePort(g.Port, c)
	if err != nil {
		return 0, "", err
	}
	host := g.Host
	if host == "" {
		host = podIP
	}
	scheme := strings.ToLower(string(g.Scheme))
	if scheme == "" {
		scheme = "http"
	}
	path := g.Path
	if path != "" && !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	u := &url.URL{Scheme: scheme, Host: net.JoinHostPort(host, strconv.Itoa(port))}
	if p, err := url.Parse(path); err == nil {
		u.Path, u.RawQuery = p.Path, p.RawQuery
	} else {
		u.Path = path
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("User-Agent", probeUserAgent)
	req.Header.Set("Accept", "*/*")
	for _, h := range g.HTTPHeaders {
		if strings.EqualFold(h.Name, "Host") {
			req.Host = h.Value
			continue
		}
		req.Header.Add(h.Name, h.Value)
	}
	client := &http.Client{
		Transport: &http.Transport{
			Proxy:             nil,
			DisableKeepAlives: true,
			TLSClientConfig:   insecureTLS(),
		},
		// Follow redirects on the same host only, as the kubelet does.
		CheckRedirect: func(r *http.Request, via []*http.Request) error {
			if len(via) >= 10 || r.URL.Hostname() != via[0].URL.Hostname() {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var body limitedBuffer
	io.Copy(&body, resp.Body)
	return resp.StatusCode, body.String(), nil
}

func httpProbe(ctx context.Context, g *corev1.HTTPGetAction, c *corev1.Container, podIP string) (probeResult, string) {
	code, body, err := httpGet(ctx, g, c, podIP)
	if err != nil {
		return resultFailure, err.Error()
	}
	if code >= http.StatusOK && code < http.StatusBadRequest {
		return resultSuccess, body
	}
	return resultFailure, fmt.Sprintf("HTTP probe failed with statuscode: %d", code)
}

func tcpProbe(ctx context.Context, t *corev1.TCPSocketAction, c *corev1.Container, podIP string) (probeResult, string) {
	port, err := resolvePort(t.Port, c)
	if err != nil {
		return resultFailure, err.Error()
	}
	host := t.Host
	if host == "" {
		host = podIP
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return resultFailure, err.Error()
	}
	conn.Close()
	return resultSuccess, ""
}

// grpcProbe asks the gRPC health service (grpc.health.v1.Health/Check)
// on the pod's port.
func grpcProbe(ctx context.Context, g *corev1.GRPCAction, podIP string) (probeResult, string) {
	addr := net.JoinHostPort(podIP, strconv.Itoa(int(g.Port)))
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithUserAgent(probeUserAgent))
	if err != nil {
		return resultFailure, fmt.Sprintf("failed to connect service %q: %v", addr, err)
	}
	defer conn.Close()
	service := ""
	if g.Service != nil {
		service = *g.Service
	}
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return resultFailure, fmt.Sprintf("timeout: health rpc did not complete within %v", deadlineLeft(ctx))
		}
		return resultFailure, fmt.Sprintf("error: health rpc probe failed: %v", err)
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return resultFailure, fmt.Sprintf("service unhealthy (responded with %q)", resp.GetStatus().String())
	}
	return resultSuccess, ""
}

func deadlineLeft(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return time.Until(d).Round(time.Millisecond)
	}
	return 0
}

// runHook runs a postStart or preStop handler.
func (a *Agent) runHook(ctx context.Context, pod *corev1.Pod, c *corev1.Container, id string, h *corev1.LifecycleHandler) error {
	switch {
	case h.Exec != nil:
		code, out, err := a.execIn(ctx, id, h.Exec.Command)
		if err != nil {
			return fmt.Errorf("command '%s' failed: %w", strings.Join(h.Exec.Command, " "), err)
		}
		if code != 0 {
			return fmt.Errorf("command '%s' exited with %d: %s", strings.Join(h.Exec.Command, " "), code, out)
		}
		return nil
	case h.HTTPGet != nil:
		podIP := a.hostIP()
		if sb, ok := a.rt.Sandbox(string(pod.UID)); ok && !pod.Spec.HostNetwork {
			podIP = sb.IP
		}
		code, body, err := httpGet(ctx, h.HTTPGet, c, podIP)
		if err != nil {
			return err
		}
		if code < http.StatusOK || code >= http.StatusBadRequest {
			return fmt.Errorf("HTTP lifecycle hook (%s) for Container %q in Pod %q failed - error: %v, message: %q",
				h.HTTPGet.Path, c.Name, podDesc(pod), fmt.Sprintf("HTTP lifecycle hook failed with statuscode: %d", code), body)
		}
		return nil
	case h.Sleep != nil:
		select {
		case <-ctx.Done():
		case <-a.clock.After(time.Duration(h.Sleep.Seconds) * time.Second):
		}
		return nil
	case h.TCPSocket != nil:
		// Deprecated and never run by the kubelet either.
		return nil
	}
	return errors.New("lifecycle handler has no action")
}
