package control

import (
	"context"
	"encoding/json"
	"maps"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Where nodes publish their proxies' sync state for `skiff mesh status`:
// one ConfigMap per node, StatusNamespace/StatusPrefix+NODE, labelled
// StatusLabel=NODE, one key per pod (NAMESPACE_POD) holding a
// ProxyStatus as JSON. It is written at most once per StatusInterval, and
// only when something changed.
const (
	StatusNamespace = "kube-system"
	StatusPrefix    = "skiff-mesh-status-"
	StatusLabel     = "mesh.skiff.dev/status-node"
	StatusInterval  = time.Second
)

// ProxyStatus is one sidecar's sync state.
type ProxyStatus struct {
	Pod       string `json:"pod"`
	Namespace string `json:"namespace"`
	Node      string `json:"node"`
	// Current is the version the node computed; Sent the last one the
	// sidecar fetched; Applied the last one it reported applied; Error
	// why it rejected the last one it reported on.
	Current   string    `json:"current,omitempty"`
	Sent      string    `json:"sent,omitempty"`
	Applied   string    `json:"applied,omitempty"`
	Error     string    `json:"error,omitempty"`
	Connected time.Time `json:"connected,omitzero"`
	Reported  time.Time `json:"reported,omitzero"`
}

func (s *Server) statusChanged() {
	select {
	case s.statusCh <- struct{}{}:
	default:
	}
}

// statusLoop publishes the proxies' states, coalesced.
func (s *Server) statusLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.statusCh:
		}
		if err := s.writeStatus(ctx); err != nil && ctx.Err() == nil {
			s.log.Debug("proxy status not published", "err", err)
			s.statusChanged() // try again
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(StatusInterval):
		}
	}
}

func (s *Server) writeStatus(ctx context.Context) error {
	data := map[string]string{}
	for _, st := range s.Statuses() {
		b, err := json.Marshal(st)
		if err != nil {
			continue
		}
		data[st.Namespace+"_"+st.Pod] = string(b)
	}
	if maps.Equal(data, s.lastStatus) || (len(data) == 0 && s.lastStatus == nil) {
		return nil
	}
	cms := s.client.CoreV1().ConfigMaps(StatusNamespace)
	name := StatusPrefix + s.opts.NodeName
	cm, err := cms.Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		_, err = cms.Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: StatusNamespace, Labels: map[string]string{StatusLabel: s.opts.NodeName}},
			Data:       data,
		}, metav1.CreateOptions{})
	case err == nil:
		cm.Data = data
		_, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
	}
	if err != nil {
		return err
	}
	s.lastStatus = data
	return nil
}
