package agent

import (
	"context"
	"fmt"
	"math"
	"net"
	"sort"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
)

// objects fetches the ConfigMaps and Secrets a pod refers to, once per
// sync.
type objects struct {
	client     kubernetes.Interface
	ns         string
	configMaps map[string]*corev1.ConfigMap
	secrets    map[string]*corev1.Secret
}

func newObjects(client kubernetes.Interface, ns string) *objects {
	return &objects{client: client, ns: ns, configMaps: map[string]*corev1.ConfigMap{}, secrets: map[string]*corev1.Secret{}}
}

// configMap returns the named ConfigMap; the error is the API's
// (`configmaps "x" not found`).
func (o *objects) configMap(ctx context.Context, name string) (*corev1.ConfigMap, error) {
	if cm, ok := o.configMaps[name]; ok {
		return cm, nil
	}
	cm, err := o.client.CoreV1().ConfigMaps(o.ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	o.configMaps[name] = cm
	return cm, nil
}

func (o *objects) secret(ctx context.Context, name string) (*corev1.Secret, error) {
	if s, ok := o.secrets[name]; ok {
		return s, nil
	}
	s, err := o.client.CoreV1().Secrets(o.ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	o.secrets[name] = s
	return s, nil
}

// envVar is one variable of a container's environment.
type envVar struct{ Name, Value string }

// envContext is what resolving a container's environment needs beyond
// the pod.
type envContext struct {
	objs       *objects
	podIP      string
	hostIP     string
	allocCPU   resource.Quantity // node allocatable, the default limits
	allocMem   resource.Quantity
	allocStore resource.Quantity
	services   map[string]string // service link variables
}

// makeEnv resolves a container's environment as the kubelet does: envFrom
// first (with prefixes), then env in order (later entries see earlier
// ones in $(VAR) references, and replace envFrom's), then the service
// link variables the container does not define. Missing ConfigMaps,
// Secrets or keys fail unless optional, with the kubelet's messages.
func makeEnv(ctx context.Context, pod *corev1.Pod, c *corev1.Container, ec envContext) ([]envVar, error) {
	values := map[string]string{}
	var order []string
	set := func(k, v string) {
		if _, ok := values[k]; !ok {
			order = append(order, k)
		}
		values[k] = v
	}
	for _, from := range c.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			cm, err := ec.objs.configMap(ctx, from.ConfigMapRef.Name)
			if err != nil {
				if apierrors.IsNotFound(err) && isTrue(from.ConfigMapRef.Optional) {
					continue
				}
				return nil, err
			}
			for _, k := range sortedKeys(cm.Data) {
				set(from.Prefix+k, cm.Data[k])
			}
		case from.SecretRef != nil:
			s, err := ec.objs.secret(ctx, from.SecretRef.Name)
			if err != nil {
				if apierrors.IsNotFound(err) && isTrue(from.SecretRef.Optional) {
					continue
				}
				return nil, err
			}
			for _, k := range sortedKeys(s.Data) {
				set(from.Prefix+k, string(s.Data[k]))
			}
		}
	}
	lookup := lookupIn(values, ec.services)
	for _, e := range c.Env {
		v := e.Value
		switch {
		case v != "":
			v = expand(v, lookup)
		case e.ValueFrom == nil:
		case e.ValueFrom.FieldRef != nil:
			var err error
			if v, err = podField(pod, e.ValueFrom.FieldRef.FieldPath, ec); err != nil {
				return nil, err
			}
		case e.ValueFrom.ResourceFieldRef != nil:
			var err error
			if v, err = resourceField(pod, c, e.ValueFrom.ResourceFieldRef, ec); err != nil {
				return nil, err
			}
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			cm, err := ec.objs.configMap(ctx, ref.Name)
			if err != nil {
				if apierrors.IsNotFound(err) && isTrue(ref.Optional) {
					continue
				}
				return nil, err
			}
			var ok bool
			if v, ok = cm.Data[ref.Key]; !ok {
				if isTrue(ref.Optional) {
					continue
				}
				return nil, fmt.Errorf("couldn't find key %v in ConfigMap %v/%v", ref.Key, pod.Namespace, ref.Name)
			}
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			s, err := ec.objs.secret(ctx, ref.Name)
			if err != nil {
				if apierrors.IsNotFound(err) && isTrue(ref.Optional) {
					continue
				}
				return nil, err
			}
			b, ok := s.Data[ref.Key]
			if !ok {
				if isTrue(ref.Optional) {
					continue
				}
				return nil, fmt.Errorf("couldn't find key %v in Secret %v/%v", ref.Key, pod.Namespace, ref.Name)
			}
			v = string(b)
		}
		set(e.Name, v)
	}
	out := make([]envVar, 0, len(order)+len(ec.services))
	for _, k := range order {
		out = append(out, envVar{k, values[k]})
	}
	for _, k := range sortedKeys(ec.services) {
		if _, ok := values[k]; !ok {
			out = append(out, envVar{k, ec.services[k]})
		}
	}
	return out, nil
}

// expandCommand expands $(VAR) references in command and args with the
// container's final environment.
func expandCommand(args []string, env []envVar) []string {
	if len(args) == 0 {
		return args
	}
	m := make(map[string]string, len(env))
	for _, e := range env {
		m[e.Name] = e.Value
	}
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = expand(a, lookupIn(m))
	}
	return out
}

// podField is the downward API's value of a pod field.
func podField(pod *corev1.Pod, path string, ec envContext) (string, error) {
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "metadata.labels":
		return formatMap(pod.Labels), nil
	case "metadata.annotations":
		return formatMap(pod.Annotations), nil
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.podIP":
		return ec.podIP, nil
	case "status.podIPs":
		return ec.podIP, nil
	case "status.hostIP", "status.hostIPs":
		return ec.hostIP, nil
	}
	for prefix, m := range map[string]map[string]string{"metadata.labels": pod.Labels, "metadata.annotations": pod.Annotations} {
		if rest, ok := strings.CutPrefix(path, prefix+"['"); ok {
			if key, ok := strings.CutSuffix(rest, "']"); ok {
				return m[key], nil
			}
		}
	}
	return "", fmt.Errorf("unsupported fieldPath: %s", path)
}

// formatMap renders labels or annotations as the downward API does: one
// key="value" per line, sorted by key.
func formatMap(m map[string]string) string {
	var b strings.Builder
	for i, k := range sortedKeys(m) {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "%s=%q", k, m[k])
	}
	return b.String()
}

// resourceField is the downward API's value of a container resource:
// limits default to the node's allocatable; values are divided by the
// divisor and rounded up.
func resourceField(pod *corev1.Pod, c *corev1.Container, ref *corev1.ResourceFieldSelector, ec envContext) (string, error) {
	if ref.ContainerName != "" {
		if c = containerByName(pod, ref.ContainerName); c == nil {
			return "", fmt.Errorf("container %q not found in pod %s/%s", ref.ContainerName, pod.Namespace, pod.Name)
		}
	}
	divisor := ref.Divisor
	if divisor.IsZero() {
		divisor = resource.MustParse("1")
	}
	get := func(list corev1.ResourceList, name corev1.ResourceName, def resource.Quantity) resource.Quantity {
		if q, ok := list[name]; ok && !q.IsZero() {
			return q
		}
		return def
	}
	switch ref.Resource {
	case "limits.cpu":
		return cpuString(get(c.Resources.Limits, corev1.ResourceCPU, ec.allocCPU), divisor), nil
	case "requests.cpu":
		q := get(c.Resources.Requests, corev1.ResourceCPU, resource.Quantity{})
		if q.IsZero() {
			q = get(c.Resources.Limits, corev1.ResourceCPU, resource.Quantity{})
		}
		return cpuString(q, divisor), nil
	case "limits.memory":
		return byteString(get(c.Resources.Limits, corev1.ResourceMemory, ec.allocMem), divisor), nil
	case "requests.memory":
		q := get(c.Resources.Requests, corev1.ResourceMemory, resource.Quantity{})
		if q.IsZero() {
			q = get(c.Resources.Limits, corev1.ResourceMemory, resource.Quantity{})
		}
		return byteString(q, divisor), nil
	case "limits.ephemeral-storage":
		return byteString(get(c.Resources.Limits, corev1.ResourceEphemeralStorage, ec.allocStore), divisor), nil
	case "requests.ephemeral-storage":
		return byteString(get(c.Resources.Requests, corev1.ResourceEphemeralStorage, resource.Quantity{}), divisor), nil
	}
	return "", fmt.Errorf("unsupported container resource: %v", ref.Resource)
}

func cpuString(q, divisor resource.Quantity) string {
	return strconv.FormatInt(int64(math.Ceil(float64(q.MilliValue())/float64(divisor.MilliValue()))), 10)
}

func byteString(q, divisor resource.Quantity) string {
	return strconv.FormatInt(int64(math.Ceil(float64(q.Value())/float64(divisor.Value()))), 10)
}

// serviceEnv are the service link variables a pod in ns sees: those of
// the services in its namespace (with enableServiceLinks, the default)
// and always those of default/kubernetes.
func serviceEnv(lister corelisters.ServiceLister, ns string, links bool) map[string]string {
	out := map[string]string{}
	if lister == nil {
		return out
	}
	svcs, _ := lister.List(labels.Everything())
	sort.Slice(svcs, func(i, j int) bool { return svcs[i].Namespace+"/"+svcs[i].Name < svcs[j].Namespace+"/"+svcs[j].Name })
	chosen := map[string]*corev1.Service{}
	for _, s := range svcs {
		if s.Spec.ClusterIP == "" || s.Spec.ClusterIP == corev1.ClusterIPNone || len(s.Spec.Ports) == 0 {
			continue
		}
		switch {
		case s.Namespace == ns && links:
			chosen[s.Name] = s
		case s.Namespace == metav1.NamespaceDefault && s.Name == "kubernetes":
			if _, ok := chosen[s.Name]; !ok {
				chosen[s.Name] = s
			}
		}
	}
	for _, s := range chosen {
		prefix := strings.ToUpper(strings.ReplaceAll(s.Name, "-", "_"))
		ip := s.Spec.ClusterIP
		out[prefix+"_SERVICE_HOST"] = ip
		out[prefix+"_SERVICE_PORT"] = strconv.Itoa(int(s.Spec.Ports[0].Port))
		for i, sp := range s.Spec.Ports {
			port := strconv.Itoa(int(sp.Port))
			if sp.Name != "" {
				out[prefix+"_SERVICE_PORT_"+strings.ToUpper(strings.ReplaceAll(sp.Name, "-", "_"))] = port
			}
			proto := strings.ToLower(string(sp.Protocol))
			if proto == "" {
				proto = "tcp"
			}
			url := proto + "://" + net.JoinHostPort(ip, port)
			if i == 0 {
				out[prefix+"_PORT"] = url
			}
			pp := fmt.Sprintf("%s_PORT_%d_%s", prefix, sp.Port, strings.ToUpper(proto))
			out[pp] = url
			out[pp+"_PROTO"] = proto
			out[pp+"_PORT"] = port
			out[pp+"_ADDR"] = ip
		}
	}
	return out
}

func isTrue(b *bool) bool { return b != nil && *b }

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
