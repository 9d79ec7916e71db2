package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"skiff.dev/skiff/internal/errdefs"
)

// NodeConnector reaches node agents (the kubelet's port): package
// nodeclient in the daemon, a test server in tests.
type NodeConnector interface {
	// Location returns the base URL (scheme and host) of the node's
	// agent server and the transport, with the API server's client
	// certificate, to reach it with. A missing Node is an API NotFound
	// status or wraps errdefs.ErrNotFound.
	Location(ctx context.Context, nodeName string) (*url.URL, http.RoundTripper, error)
}

var (
	podsGR     = schema.GroupResource{Resource: "pods"}
	nodesGR    = schema.GroupResource{Resource: "nodes"}
	podLogKind = schema.GroupKind{Kind: "PodLogOptions"}
)

// serveNodeStreams answers what the node agents serve, through them:
// pods/log (streamed), pods/exec, pods/attach and pods/portforward (a
// reverse proxy that passes the SPDY or WebSocket upgrade through, so
// that the client and the agent speak it end to end), and
// nodes/{name}/proxy/{path}. It reports whether the request was one of
// those.
func (s *Server) serveNodeStreams(w http.ResponseWriter, r *http.Request, ri requestInfo) bool {
	if node, path, ok := nodeProxyPath(r.URL.Path); ok {
		if err := s.proxyNode(w, r, node, path); err != nil {
			writeError(w, err)
		}
		return true
	}
	if !ri.isResource || ri.group != "" || ri.version != "v1" || ri.resource != "pods" || ri.name == "" {
		return false
	}
	var err error
	switch ri.subresource {
	case "log":
		err = s.podLog(w, r, ri)
	case "exec", "attach":
		err = s.podStream(w, r, ri)
	case "portforward":
		err = s.podPortForward(w, r, ri)
	default:
		return false
	}
	if err != nil {
		writeError(w, err)
	}
	return true
}

// nodeProxyPath splits /api/v1/nodes/{name}/proxy[/{path}].
func nodeProxyPath(p string) (node, rest string, ok bool) {
	tail, found := strings.CutPrefix(p, "/api/v1/nodes/")
	if !found {
		return "", "", false
	}
	node, tail, found = strings.Cut(tail, "/")
	if !found || node == "" {
		return "", "", false
	}
	if tail != "proxy" && !strings.HasPrefix(tail, "proxy/") {
		return "", "", false
	}
	return node, "/" + strings.TrimPrefix(strings.TrimPrefix(tail, "proxy"), "/"), true
}

// proxyNode passes any request to the node's agent at path.
func (s *Server) proxyNode(w http.ResponseWriter, r *http.Request, node, path string) error {
	return s.proxyTo(w, r, node, path, r.URL.RawQuery)
}

// getPod reads a pod from the store.
func (s *Server) getPod(ctx context.Context, ri requestInfo) (*corev1.Pod, error) {
	if ri.namespace == "" {
		return nil, apierrors.NewBadRequest("pods are namespaced: the request needs a namespace")
	}
	k := s.storageKind(schema.GroupKind{Kind: "Pod"})
	if k == nil {
		return nil, apierrors.NewNotFound(podsGR, ri.name)
	}
	kv, err := s.cfg.Store.Get(ctx, k.key(ri.namespace, ri.name))
	if err != nil {
		return nil, storeError(k, ri.name, err)
	}
	obj, err := k.decodeKV(kv)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil, apierrors.NewInternalError(fmt.Errorf("stored pod %s is a %T", ri.name, obj))
	}
	return pod, nil
}

// validateContainer picks the request's container as upstream does: the
// one named (app, init or ephemeral), or the only one.
func validateContainer(container string, pod *corev1.Pod) (string, error) {
	var names []string
	for _, c := range pod.Spec.Containers {
		names = append(names, c.Name)
	}
	for _, c := range pod.Spec.InitContainers {
		names = append(names, c.Name)
	}
	for _, c := range pod.Spec.EphemeralContainers {
		names = append(names, c.Name)
	}
	if container == "" {
		switch len(pod.Spec.Containers) {
		case 1:
			return pod.Spec.Containers[0].Name, nil
		case 0:
			return "", apierrors.NewBadRequest(fmt.Sprintf("a container name must be specified for pod %s", pod.Name))
		}
		return "", apierrors.NewBadRequest(fmt.Sprintf("a container name must be specified for pod %s, choose one of: %s", pod.Name, names))
	}
	for _, n := range names {
		if n == container {
			return container, nil
		}
	}
	return "", apierrors.NewBadRequest(fmt.Sprintf("container %s is not valid for pod %s", container, pod.Name))
}

// podLog streams a container's log from its node as text/plain.
func (s *Server) podLog(w http.ResponseWriter, r *http.Request, ri requestInfo) error {
	if r.Method != http.MethodGet {
		return apierrors.NewMethodNotSupported(schema.GroupResource{Resource: "pods/log"}, ri.verb)
	}
	q := r.URL.Query()
	params, follow, err := podLogParams(q, ri.name)
	if err != nil {
		return err
	}
	ctx := r.Context()
	pod, err := s.getPod(ctx, ri)
	if err != nil {
		return err
	}
	container, err := validateContainer(q.Get("container"), pod)
	if err != nil {
		return err
	}
	if pod.Spec.NodeName == "" {
		// Not scheduled: nothing logged yet (upstream answers an empty
		// stream too).
		w.Header().Set("Content-Type", "text/plain")
		w.WriteHeader(http.StatusOK)
		return nil
	}
	base, rt, err := s.nodeLocation(ctx, pod.Spec.NodeName)
	if err != nil {
		return err
	}
	loc := *base
	loc.Path = fmt.Sprintf("/containerLogs/%s/%s/%s", pod.Namespace, pod.Name, container)
	loc.RawQuery = params.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, loc.String(), nil)
	if err != nil {
		return apierrors.NewInternalError(err)
	}
	resp, err := rt.RoundTrip(req)
	if err != nil {
		return backendError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nodeError(resp, podsGR, pod.Name)
	}
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	if follow && flusher != nil {
		flusher.Flush()
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := resp.Body.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return nil
			}
			if follow && flusher != nil {
				flusher.Flush()
			}
		}
		if err != nil {
			return nil // the status is sent; the stream just ends
		}
	}
}

// podLogParams validates the pods/log query (v1.PodLogOptions) and turns
// it into the agent's containerLogs query.
func podLogParams(q url.Values, name string) (url.Values, bool, error) {
	out := url.Values{}
	follow := paramTrue(q, "follow")
	for _, b := range []string{"follow", "previous", "timestamps"} {
		if paramTrue(q, b) {
			out.Set(b, "true")
		}
	}
	var errs field.ErrorList
	num := func(key string) (int64, bool, error) {
		v := q.Get(key)
		if v == "" {
			return 0, false, nil
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, false, apierrors.NewBadRequest(fmt.Sprintf("%s: %q is not an integer", key, v))
		}
		return n, true, nil
	}
	tail, hasTail, err := num("tailLines")
	if err != nil {
		return nil, false, err
	}
	if hasTail {
		if tail < 0 {
			errs = append(errs, field.Invalid(field.NewPath("tailLines"), tail, "must be greater than or equal to 0"))
		}
		out.Set("tailLines", strconv.FormatInt(tail, 10))
	}
	limit, hasLimit, err := num("limitBytes")
	if err != nil {
		return nil, false, err
	}
	if hasLimit {
		if limit < 1 {
			errs = append(errs, field.Invalid(field.NewPath("limitBytes"), limit, "must be greater than 0"))
		}
		out.Set("limitBytes", strconv.FormatInt(limit, 10))
	}
	secs, hasSecs, err := num("sinceSeconds")
	if err != nil {
		return nil, false, err
	}
	if hasSecs {
		if secs < 1 {
			errs = append(errs, field.Invalid(field.NewPath("sinceSeconds"), secs, "must be greater than 0"))
		}
		out.Set("sinceSeconds", strconv.FormatInt(secs, 10))
	}
	if v := q.Get("sinceTime"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return nil, false, apierrors.NewBadRequest(fmt.Sprintf("sinceTime: %q is not an RFC 3339 time", v))
		}
		if hasSecs {
			errs = append(errs, field.Forbidden(field.NewPath(""), "at most one of `sinceTime` or `sinceSeconds` may be specified"))
		}
		out.Set("sinceTime", t.Format(time.RFC3339))
	}
	if v := q.Get("stream"); v != "" {
		switch v {
		case corev1.LogStreamAll, corev1.LogStreamStdout, corev1.LogStreamStderr:
			if v != corev1.LogStreamAll && hasTail {
				errs = append(errs, field.Forbidden(field.NewPath("stream"), "`tailLines` and specific `stream` are mutually exclusive for now"))
			}
			out.Set("stream", v)
		default:
			errs = append(errs, field.NotSupported(field.NewPath("stream"), v, []string{corev1.LogStreamAll, corev1.LogStreamStdout, corev1.LogStreamStderr}))
		}
	}
	if len(errs) > 0 {
		return nil, false, apierrors.NewInvalid(podLogKind, name, errs)
	}
	return out, follow, nil
}

// podStream proxies pods/exec and pods/attach to the agent's /exec and
// /attach.
func (s *Server) podStream(w http.ResponseWriter, r *http.Request, ri requestInfo) error {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		return apierrors.NewMethodNotSupported(schema.GroupResource{Resource: "pods/" + ri.subresource}, ri.verb)
	}
	q := r.URL.Query()
	pod, err := s.getPod(r.Context(), ri)
	if err != nil {
		return err
	}
	container, err := validateContainer(q.Get("container"), pod)
	if err != nil {
		return err
	}
	if pod.Spec.NodeName == "" {
		return apierrors.NewBadRequest(fmt.Sprintf("pod %s does not have a host assigned", pod.Name))
	}
	params := url.Values{}
	for from, to := range map[string]string{"stdin": corev1.ExecStdinParam, "stdout": corev1.ExecStdoutParam, "stderr": corev1.ExecStderrParam, "tty": corev1.ExecTTYParam} {
		if paramTrue(q, from) {
			params.Set(to, "1")
		}
	}
	if ri.subresource == "exec" {
		cmd := q["command"]
		if len(cmd) == 0 {
			return apierrors.NewBadRequest("you must specify at least one command for the container")
		}
		params["command"] = cmd
	}
	path := fmt.Sprintf("/%s/%s/%s/%s", ri.subresource, pod.Namespace, pod.Name, container)
	return s.proxyTo(w, r, pod.Spec.NodeName, path, params.Encode())
}

// podPortForward proxies pods/portforward to the agent's /portForward.
func (s *Server) podPortForward(w http.ResponseWriter, r *http.Request, ri requestInfo) error {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		return apierrors.NewMethodNotSupported(schema.GroupResource{Resource: "pods/portforward"}, ri.verb)
	}
	var ports []string
	for _, v := range r.URL.Query()["ports"] {
		for _, p := range strings.Split(v, ",") {
			n, err := strconv.ParseUint(strings.TrimSpace(p), 10, 16)
			if err != nil || n == 0 {
				return apierrors.NewBadRequest(fmt.Sprintf("ports: %q is not a port number (1-65535)", p))
			}
			ports = append(ports, strconv.FormatUint(n, 10))
		}
	}
	pod, err := s.getPod(r.Context(), ri)
	if err != nil {
		return err
	}
	if pod.Spec.NodeName == "" {
		return apierrors.NewBadRequest(fmt.Sprintf("pod %s does not have a host assigned", pod.Name))
	}
	params := url.Values{}
	if len(ports) > 0 {
		params.Set(corev1.PortHeader, strings.Join(ports, ","))
	}
	return s.proxyTo(w, r, pod.Spec.NodeName, fmt.Sprintf("/portForward/%s/%s", pod.Namespace, pod.Name), params.Encode())
}

// proxyTo passes the request to path on the node's agent, upgrades
// included: once the agent switched protocols, bytes flow both ways
// untouched until either side closes. The caller's credentials stay
// here; the agent sees the API server's client certificate.
func (s *Server) proxyTo(w http.ResponseWriter, r *http.Request, node, path, rawQuery string) error {
	base, rt, err := s.nodeLocation(r.Context(), node)
	if err != nil {
		return err
	}
	target := *base
	target.Path, target.RawPath, target.RawQuery = path, "", rawQuery
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			u := target
			pr.Out.URL = &u
			pr.Out.Host = ""
			for _, h := range []string{"Authorization", "Impersonate-User", "Impersonate-Group", "Impersonate-Uid"} {
				pr.Out.Header.Del(h)
			}
		},
		Transport:     rt,
		FlushInterval: -1,
		ErrorLog:      slog.NewLogLogger(s.log.With("component", "apiserver").Handler(), slog.LevelDebug),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() != nil {
				return // the client left
			}
			writeError(w, backendError(err))
		},
	}
	rp.ServeHTTP(w, r)
	return nil
}

// nodeLocation asks the NodeConnector where the node's agent is.
func (s *Server) nodeLocation(ctx context.Context, node string) (*url.URL, http.RoundTripper, error) {
	if s.cfg.Nodes == nil {
		return nil, nil, apierrors.NewServiceUnavailable("this API server has no connection to node agents")
	}
	u, rt, err := s.cfg.Nodes.Location(ctx, node)
	if err != nil {
		var st apierrors.APIStatus
		switch {
		case errors.As(err, &st):
			return nil, nil, err
		case errors.Is(err, errdefs.ErrNotFound):
			return nil, nil, apierrors.NewNotFound(nodesGR, node)
		}
		return nil, nil, unknownError(http.StatusInternalServerError, err.Error())
	}
	return u, rt, nil
}

// backendError is a failure to reach an agent, worded as upstream's.
func backendError(err error) error {
	return unknownError(http.StatusInternalServerError, "error dialing backend: "+err.Error())
}

// unknownError is a Status without a reason: kubectl prints "Error from
// server: message".
func unknownError(code int, msg string) error {
	return &apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure, Code: int32(code), Message: msg}}
}

// nodeError turns an agent's error response into a Status, as upstream's
// response checker does: a Status body is passed on; otherwise the text
// is the message, the code its kind.
func nodeError(resp *http.Response, gr schema.GroupResource, name string) error {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var st metav1.Status
	if json.Unmarshal(body, &st) == nil && st.Kind == "Status" && st.Code != 0 {
		return &apierrors.StatusError{ErrStatus: st}
	}
	text := strings.TrimSpace(string(body))
	switch resp.StatusCode {
	case http.StatusBadRequest:
		return apierrors.NewBadRequest(text)
	case http.StatusNotFound:
		return &apierrors.StatusError{ErrStatus: metav1.Status{Status: metav1.StatusFailure, Code: http.StatusNotFound,
			Reason: metav1.StatusReasonNotFound, Message: text,
			Details: &metav1.StatusDetails{Group: gr.Group, Kind: gr.Resource, Name: name}}}
	case http.StatusUnauthorized, http.StatusForbidden:
		return apierrors.NewInternalError(fmt.Errorf("the node agent refused the API server's credentials: %s", text))
	case http.StatusInternalServerError:
		return apierrors.NewInternalError(errors.New(text))
	}
	return unknownError(resp.StatusCode, text)
}

// paramTrue reads a boolean query parameter as the API machinery does:
// present and neither "false" nor "0".
func paramTrue(q url.Values, key string) bool {
	v, ok := q[key]
	if !ok || len(v) == 0 {
		return false
	}
	return v[0] != "0" && !strings.EqualFold(v[0], "false")
}
