package sidecar

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"skiff.dev/skiff/internal/mesh/meshconfig"
)

// App probes (Istio's probe rewrite): injection pointed the kubelet's
// httpGet and tcpSocket probes of the app containers at the stats port,
// path /app-health/<container>/livez|readyz|startupz, and gave the
// sidecar the originals (Options.AppProbers, from
// ISTIO_KUBE_APP_PROBERS). The stats server performs the original probe
// from inside the pod against 127.0.0.1 — loopback is not captured, nor
// is anything the proxy's uid sends — and answers:
//
//   - httpGet: the app's status code (as Istio; the kubelet counts
//     200-399 as success), 503 when the app cannot be reached or does
//     not answer within the probe's timeout. The probe's scheme, path,
//     headers and host (as the Host header) are used; HTTPS is not
//     verified and redirects are not followed, as the kubelet.
//   - tcpSocket: 200 when a connection opens within the timeout, else
//     503.
//
// A path with no probe answers 404. An app that listens only on the pod
// IP, not on loopback, fails its rewritten probes (as under Istio).

// ParseAppProbers reads the ISTIO_KUBE_APP_PROBERS value ("" is none).
func ParseAppProbers(s string) (meshconfig.AppProbers, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var p meshconfig.AppProbers
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		return nil, fmt.Errorf("%s: %w", meshconfig.AppProbersEnv, err)
	}
	for path, pr := range p {
		if !strings.HasPrefix(path, meshconfig.AppHealthPrefix) {
			return nil, fmt.Errorf("%s: path %q does not start with %s", meshconfig.AppProbersEnv, path, meshconfig.AppHealthPrefix)
		}
		if (pr.HTTPGet == nil) == (pr.TCPSocket == nil) {
			return nil, fmt.Errorf("%s: %s needs exactly one of httpGet and tcpSocket", meshconfig.AppProbersEnv, path)
		}
	}
	return p, nil
}

// appProber serves the /app-health/ paths.
type appProber struct {
	probers meshconfig.AppProbers
	host    string // where the app is: 127.0.0.1
	client  *http.Client
}

func newAppProber(probers meshconfig.AppProbers) *appProber {
	tr := &http.Transport{
		// The kubelet neither verifies the app's certificate nor reuses
		// connections between probes.
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // as the kubelet's prober
		DisableKeepAlives: true,
		Proxy:             nil,
	}
	return &appProber{probers: probers, host: "127.0.0.1", client: &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (a *appProber) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	pr, ok := a.probers[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	timeout := time.Duration(pr.TimeoutSeconds) * time.Second
	if timeout <= 0 {
		timeout = time.Second // the Pod API's default
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	var code int
	var err error
	if pr.HTTPGet != nil {
		code, err = a.httpGet(ctx, pr.HTTPGet, r.Header)
	} else {
		code, err = a.tcp(ctx, pr.TCPSocket)
	}
	if err != nil {
		http.Error(w, "app probe failed: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.WriteHeader(code)
}

func (a *appProber) httpGet(ctx context.Context, g *meshconfig.HTTPGetProbe, in http.Header) (int, error) {
	scheme := strings.ToLower(g.Scheme)
	if scheme == "" {
		scheme = "http"
	}
	path := g.Path
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	u, err := url.Parse(scheme + "://" + net.JoinHostPort(a.host, strconv.Itoa(int(g.Port))) + path)
	if err != nil {
		return 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return 0, err
	}
	// The kubelet's own headers (User-Agent kube-probe/..., Accept),
	// then the probe's.
	for _, k := range []string{"User-Agent", "Accept"} {
		if v := in.Get(k); v != "" {
			req.Header.Set(k, v)
		}
	}
	if g.Host != "" {
		req.Host = g.Host
	}
	for _, h := range g.HTTPHeaders {
		if strings.EqualFold(h.Name, "Host") {
			req.Host = h.Value
			continue
		}
		req.Header.Add(h.Name, h.Value)
	}
	res, err := a.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	return res.StatusCode, nil
}

func (a *appProber) tcp(ctx context.Context, t *meshconfig.TCPSocketProbe) (int, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(a.host, strconv.Itoa(int(t.Port))))
	if err != nil {
		return 0, err
	}
	_ = c.Close()
	return http.StatusOK, nil
}
