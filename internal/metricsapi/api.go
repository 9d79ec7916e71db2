package metricsapi

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
)

// The group's resources as metrics-server names them in errors.
var (
	nodeMetricsGR = schema.GroupResource{Group: GroupVersion.Group, Resource: "nodemetrics"}
	podMetricsGR  = schema.GroupResource{Group: GroupVersion.Group, Resource: "podmetrics"}
)

// request is what a path under /apis/metrics.k8s.io/v1beta1 addresses.
type request struct {
	resource, namespace, name string
}

// parsePath accepts nodes[/{name}], pods, and namespaces/{ns}/pods[/{name}].
func parsePath(path string) (request, bool) {
	prefix := "/apis/" + GroupVersion.String() + "/"
	rest, ok := strings.CutPrefix(path, prefix)
	if !ok {
		return request{}, false
	}
	segs := strings.Split(strings.TrimSuffix(rest, "/"), "/")
	var r request
	if len(segs) >= 3 && segs[0] == "namespaces" && segs[1] != "" {
		r.namespace, segs = segs[1], segs[2:]
		if segs[0] != "pods" {
			return request{}, false
		}
	}
	switch {
	case len(segs) == 0 || len(segs) > 2 || segs[0] == "":
		return request{}, false
	case segs[0] != "nodes" && segs[0] != "pods":
		return request{}, false
	case len(segs) == 2 && segs[1] == "":
		return request{}, false
	}
	r.resource = segs[0]
	if len(segs) == 2 {
		r.name = segs[1]
	}
	return r, true
}

// Handler serves the group's resources: get and list of NodeMetrics and
// PodMetrics (namespaced and across namespaces) with labelSelector and
// fieldSelector (metadata.name, metadata.namespace), as JSON or as a
// Table. Discovery documents are the API server's.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	req, ok := parsePath(r.URL.Path)
	if !ok {
		writeError(w, apierrors.NewNotFound(schema.GroupResource{}, r.URL.Path))
		return
	}
	gr := nodeMetricsGR
	if req.resource == "pods" {
		gr = podMetricsGR
	}
	q := r.URL.Query()
	verb := "list"
	if req.name != "" {
		verb = "get"
	}
	if (r.Method != http.MethodGet && r.Method != http.MethodHead) || q.Get("watch") == "true" || q.Get("watch") == "1" {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			verb = strings.ToLower(r.Method)
		} else {
			verb = "watch"
		}
		writeError(w, apierrors.NewMethodNotSupported(gr, verb))
		return
	}
	out, err := negotiate(r.Header.Get("Accept"))
	if err != nil {
		writeError(w, err)
		return
	}
	var obj any
	switch {
	case req.resource == "nodes" && req.name != "":
		obj, err = s.getNode(req.name)
	case req.resource == "nodes":
		obj, err = s.listNodes(q.Get("labelSelector"), q.Get("fieldSelector"))
	case req.name != "":
		obj, err = s.getPod(req.namespace, req.name)
	default:
		obj, err = s.listPods(req.namespace, q.Get("labelSelector"), q.Get("fieldSelector"))
	}
	if err != nil {
		writeError(w, err)
		return
	}
	if out.table != "" {
		obj = toTable(obj, out.table, q.Get("includeObject"))
	}
	writeJSON(w, http.StatusOK, obj)
}

func (s *Server) getNode(name string) (*metricsv1beta1.NodeMetrics, error) {
	node, err := s.nodeLister.Get(name)
	if apierrors.IsNotFound(err) {
		return nil, apierrors.NewNotFound(corev1.Resource("nodes"), name)
	}
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	m, ok := s.nodeMetrics(node)
	if !ok {
		return nil, apierrors.NewNotFound(nodeMetricsGR, name)
	}
	m.TypeMeta = metav1.TypeMeta{Kind: "NodeMetrics", APIVersion: GroupVersion.String()}
	return m, nil
}

func (s *Server) listNodes(labelSel, fieldSel string) (*metricsv1beta1.NodeMetricsList, error) {
	ls, fs, err := selectors(labelSel, fieldSel)
	if err != nil {
		return nil, err
	}
	nodes, err := s.nodeLister.List(ls)
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	list := &metricsv1beta1.NodeMetricsList{
		TypeMeta: metav1.TypeMeta{Kind: "NodeMetricsList", APIVersion: GroupVersion.String()},
		Items:    []metricsv1beta1.NodeMetrics{},
	}
	for _, n := range nodes {
		if !fs.Matches(fields.Set{"metadata.name": n.Name}) {
			continue
		}
		if m, ok := s.nodeMetrics(n); ok {
			list.Items = append(list.Items, *m)
		}
	}
	slices.SortFunc(list.Items, func(a, b metricsv1beta1.NodeMetrics) int { return cmp.Compare(a.Name, b.Name) })
	return list, nil
}

func (s *Server) nodeMetrics(n *corev1.Node) (*metricsv1beta1.NodeMetrics, bool) {
	usage, ts, window, ok := s.store.node(n.Name)
	if !ok {
		return nil, false
	}
	return &metricsv1beta1.NodeMetrics{
		ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: n.Labels, CreationTimestamp: metav1.NewTime(s.opts.Now())},
		Timestamp:  metav1.NewTime(ts),
		Window:     metav1.Duration{Duration: window},
		Usage:      usage,
	}, true
}

func (s *Server) getPod(namespace, name string) (*metricsv1beta1.PodMetrics, error) {
	pod, err := s.podLister.Pods(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		return nil, apierrors.NewNotFound(corev1.Resource("pods"), name)
	}
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	m, ok := s.podMetrics(pod)
	if !ok {
		return nil, apierrors.NewNotFound(podMetricsGR, namespace+"/"+name)
	}
	m.TypeMeta = metav1.TypeMeta{Kind: "PodMetrics", APIVersion: GroupVersion.String()}
	return m, nil
}

func (s *Server) listPods(namespace, labelSel, fieldSel string) (*metricsv1beta1.PodMetricsList, error) {
	ls, fs, err := selectors(labelSel, fieldSel)
	if err != nil {
		return nil, err
	}
	var pods []*corev1.Pod
	if namespace == "" {
		pods, err = s.podLister.List(ls)
	} else {
		pods, err = s.podLister.Pods(namespace).List(ls)
	}
	if err != nil {
		return nil, apierrors.NewInternalError(err)
	}
	list := &metricsv1beta1.PodMetricsList{
		TypeMeta: metav1.TypeMeta{Kind: "PodMetricsList", APIVersion: GroupVersion.String()},
		Items:    []metricsv1beta1.PodMetrics{},
	}
	for _, p := range pods {
		if !fs.Matches(fields.Set{"metadata.name": p.Name, "metadata.namespace": p.Namespace}) {
			continue
		}
		if m, ok := s.podMetrics(p); ok {
			list.Items = append(list.Items, *m)
		}
	}
	slices.SortFunc(list.Items, func(a, b metricsv1beta1.PodMetrics) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	return list, nil
}

func (s *Server) podMetrics(p *corev1.Pod) (*metricsv1beta1.PodMetrics, bool) {
	containers, ts, window, ok := s.store.pod(podKey{p.Namespace, p.Name})
	if !ok {
		return nil, false
	}
	return &metricsv1beta1.PodMetrics{
		ObjectMeta: metav1.ObjectMeta{Name: p.Name, Namespace: p.Namespace, Labels: p.Labels,
			CreationTimestamp: metav1.NewTime(s.opts.Now())},
		Timestamp:  metav1.NewTime(ts),
		Window:     metav1.Duration{Duration: window},
		Containers: containers,
	}, true
}

func selectors(labelSel, fieldSel string) (labels.Selector, fields.Selector, error) {
	ls, err := labels.Parse(labelSel)
	if err != nil {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("invalid labelSelector %q: %v", labelSel, err))
	}
	fs, err := fields.ParseSelector(fieldSel)
	if err != nil {
		return nil, nil, apierrors.NewBadRequest(fmt.Sprintf("invalid fieldSelector %q: %v", fieldSel, err))
	}
	return ls, fs, nil
}

// output is the negotiated response form: JSON, or a Table of the
// meta.k8s.io version in table.
type output struct{ table string }

// negotiate picks the first form Accept allows: a Table
// (application/json;as=Table;g=meta.k8s.io;v=v1 or v1beta1) or plain
// JSON; an Accept that allows neither is 406.
func negotiate(accept string) (output, error) {
	if strings.TrimSpace(accept) == "" {
		return output{}, nil
	}
	for part := range strings.SplitSeq(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch {
		case mt == "application/json" && params["as"] == "Table" && params["g"] == "meta.k8s.io" &&
			(params["v"] == "v1" || params["v"] == "v1beta1"):
			return output{table: params["v"]}, nil
		case (mt == "application/json" || mt == "*/*" || mt == "application/*") && params["as"] == "":
			return output{}, nil
		}
	}
	return output{}, &apierrors.StatusError{ErrStatus: metav1.Status{
		Status: metav1.StatusFailure, Code: http.StatusNotAcceptable, Reason: metav1.StatusReasonNotAcceptable,
		Message: "only the following media types are accepted: application/json, application/json;as=Table;g=meta.k8s.io;v=v1",
	}}
}

func writeError(w http.ResponseWriter, err error) {
	var st apierrors.APIStatus
	if !errors.As(err, &st) {
		st = apierrors.NewInternalError(err)
	}
	status := st.Status()
	status.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	code := int(status.Code)
	if code == 0 {
		code = http.StatusInternalServerError
	}
	writeJSON(w, code, &status)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	w.Write(b)
	w.Write([]byte{'\n'})
}
