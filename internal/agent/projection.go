package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// defaultFileMode is the mode of configMap, secret, downwardAPI and
// projected files without one (the API's default, 0644).
const defaultFileMode = 0o644

// volumePayload computes the files of a configMap, secret, downwardAPI or
// projected volume.
func (a *Agent) volumePayload(ctx context.Context, pod *corev1.Pod, v *corev1.Volume, objs *objects) (map[string]fileProjection, error) {
	switch {
	case v.ConfigMap != nil:
		return configMapPayload(ctx, objs, v.ConfigMap.Name, v.ConfigMap.Items, v.ConfigMap.Optional, mode(v.ConfigMap.DefaultMode, defaultFileMode))
	case v.Secret != nil:
		return secretPayload(ctx, objs, v.Secret.SecretName, v.Secret.Items, v.Secret.Optional, mode(v.Secret.DefaultMode, defaultFileMode))
	case v.DownwardAPI != nil:
		return a.downwardPayload(pod, v.DownwardAPI.Items, mode(v.DownwardAPI.DefaultMode, defaultFileMode))
	case v.Projected != nil:
		return a.projectedPayload(ctx, pod, v.Projected, objs)
	}
	return nil, errors.New("not a projected volume")
}

func mode(m *int32, def os.FileMode) os.FileMode {
	if m == nil {
		return def
	}
	return os.FileMode(*m) & 0o777
}

func configMapPayload(ctx context.Context, objs *objects, name string, items []corev1.KeyToPath, optional *bool, def os.FileMode) (map[string]fileProjection, error) {
	out := map[string]fileProjection{}
	cm, err := objs.configMap(ctx, name)
	if err != nil {
		if apierrors.IsNotFound(err) && isTrue(optional) {
			return out, nil
		}
		return nil, err
	}
	if len(items) == 0 {
		for k, s := range cm.Data {
			out[k] = fileProjection{Data: []byte(s), Mode: def}
		}
		for k, b := range cm.BinaryData {
			out[k] = fileProjection{Data: b, Mode: def}
		}
		return out, nil
	}
	for _, it := range items {
		var data []byte
		if s, ok := cm.Data[it.Key]; ok {
			data = []byte(s)
		} else if b, ok := cm.BinaryData[it.Key]; ok {
			data = b
		} else {
			if isTrue(optional) {
				continue
			}
			return nil, fmt.Errorf("configmap references non-existent config key: %s", it.Key)
		}
		out[it.Path] = fileProjection{Data: data, Mode: mode(it.Mode, def)}
	}
	return out, nil
}

func secretPayload(ctx context.Context, objs *objects, name string, items []corev1.KeyToPath, optional *bool, def os.FileMode) (map[string]fileProjection, error) {
	out := map[string]fileProjection{}
	s, err := objs.secret(ctx, name)
	if err != nil {
		if apierrors.IsNotFound(err) && isTrue(optional) {
			return out, nil
		}
		return nil, err
	}
	if len(items) == 0 {
		for k, b := range s.Data {
			out[k] = fileProjection{Data: b, Mode: def}
		}
		return out, nil
	}
	for _, it := range items {
		b, ok := s.Data[it.Key]
		if !ok {
			if isTrue(optional) {
				continue
			}
			return nil, fmt.Errorf("references non-existent secret key: %s", it.Key)
		}
		out[it.Path] = fileProjection{Data: b, Mode: mode(it.Mode, def)}
	}
	return out, nil
}

func (a *Agent) downwardPayload(pod *corev1.Pod, items []corev1.DownwardAPIVolumeFile, def os.FileMode) (map[string]fileProjection, error) {
	out := map[string]fileProjection{}
	ec := a.envContext(pod, nil)
	for _, it := range items {
		var value string
		var err error
		switch {
		case it.FieldRef != nil:
			value, err = podField(pod, it.FieldRef.FieldPath, ec)
		case it.ResourceFieldRef != nil && it.ResourceFieldRef.ContainerName == "":
			err = fmt.Errorf("downward API item %q: resourceFieldRef needs a containerName in a volume", it.Path)
		case it.ResourceFieldRef != nil:
			value, err = resourceField(pod, nil, it.ResourceFieldRef, ec)
		default:
			err = fmt.Errorf("downward API item %q has no source", it.Path)
		}
		if err != nil {
			return nil, err
		}
		out[it.Path] = fileProjection{Data: []byte(value), Mode: mode(it.Mode, def)}
	}
	return out, nil
}

func (a *Agent) projectedPayload(ctx context.Context, pod *corev1.Pod, p *corev1.ProjectedVolumeSource, objs *objects) (map[string]fileProjection, error) {
	def := mode(p.DefaultMode, defaultFileMode)
	out := map[string]fileProjection{}
	merge := func(m map[string]fileProjection, err error) error {
		if err != nil {
			return err
		}
		for k, v := range m {
			out[k] = v
		}
		return nil
	}
	for _, src := range p.Sources {
		var err error
		switch {
		case src.ConfigMap != nil:
			err = merge(configMapPayload(ctx, objs, src.ConfigMap.Name, src.ConfigMap.Items, src.ConfigMap.Optional, def))
		case src.Secret != nil:
			err = merge(secretPayload(ctx, objs, src.Secret.Name, src.Secret.Items, src.Secret.Optional, def))
		case src.DownwardAPI != nil:
			err = merge(a.downwardPayload(pod, src.DownwardAPI.Items, def))
		case src.ServiceAccountToken != nil:
			err = merge(a.tokenPayload(ctx, pod, src.ServiceAccountToken, def))
		default:
			err = errors.New("projected volume source not supported by Skiff's node agent")
		}
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// tokenPayload asks the API for a token of the pod's service account,
// bound to the pod.
func (a *Agent) tokenPayload(ctx context.Context, pod *corev1.Pod, t *corev1.ServiceAccountTokenProjection, def os.FileMode) (map[string]fileProjection, error) {
	sa := pod.Spec.ServiceAccountName
	if sa == "" {
		sa = "default"
	}
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: t.ExpirationSeconds,
		BoundObjectRef:    &authenticationv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: pod.Name, UID: pod.UID},
	}}
	if t.Audience != "" {
		req.Spec.Audiences = []string{t.Audience}
	}
	key := fmt.Sprintf("%s/%s/%s/%s", pod.UID, sa, t.Audience, t.Path)
	a.mu.Lock()
	cached, ok := a.tokens[key]
	a.mu.Unlock()
	if !ok || !a.clock.Now().Before(cached.refresh) {
		tok, err := a.client.CoreV1().ServiceAccounts(pod.Namespace).CreateToken(ctx, sa, req, metav1.CreateOptions{})
		if err != nil {
			return nil, fmt.Errorf("failed to fetch token: %w", err)
		}
		// Refresh at 80% of its life, as the kubelet does.
		now := a.clock.Now()
		life := tok.Status.ExpirationTimestamp.Sub(now)
		cached = cachedToken{token: tok.Status.Token, refresh: now.Add(life * 8 / 10)}
		a.mu.Lock()
		a.tokens[key] = cached
		a.mu.Unlock()
	}
	return map[string]fileProjection{t.Path: {Data: []byte(cached.token), Mode: def}}, nil
}

// cachedToken is a service account token and when to renew it.
type cachedToken struct {
	token   string
	refresh time.Time
}

// forgetPod drops what the agent keeps about a pod that is gone.
func (a *Agent) forgetPod(uid types.UID) {
	a.mu.Lock()
	defer a.mu.Unlock()
	prefix := string(uid) + "/"
	for k := range a.tokens {
		if strings.HasPrefix(k, prefix) {
			delete(a.tokens, k)
		}
	}
	for k := range a.pullErrors {
		if strings.HasPrefix(k, prefix) {
			delete(a.pullErrors, k)
		}
	}
}
