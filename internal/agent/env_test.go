package agent

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
)

func ptr[T any](v T) *T { return &v }

func envPod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "ns", UID: "uid-1",
			Labels: map[string]string{"app": "web", "tier": "front"}, Annotations: map[string]string{"note": "a \"quoted\" value"}},
		Spec: corev1.PodSpec{NodeName: "node1", ServiceAccountName: "sa"},
	}
}

func TestMakeEnv(t *testing.T) {
	client := fake.NewSimpleClientset(
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm", Namespace: "ns"}, Data: map[string]string{"color": "blue", "size": "L"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "sec", Namespace: "ns"}, Data: map[string][]byte{"password": []byte("s3cret")}},
	)
	ec := func() envContext {
		return envContext{
			objs: newObjects(client, "ns"), podIP: "10.244.0.5", hostIP: "192.168.1.2",
			allocCPU: resource.MustParse("4"), allocMem: resource.MustParse("8Gi"),
			services: map[string]string{"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"},
		}
	}
	cmKey := func(name, key string, optional bool) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: key, Optional: &optional}}
	}
	secKey := func(name, key string, optional bool) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: key, Optional: &optional}}
	}
	field := func(path string) *corev1.EnvVarSource {
		return &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: path}}
	}
	resField := func(r, divisor string) *corev1.EnvVarSource {
		s := &corev1.ResourceFieldSelector{Resource: r}
		if divisor != "" {
			s.Divisor = resource.MustParse(divisor)
		}
		return &corev1.EnvVarSource{ResourceFieldRef: s}
	}
	services := []envVar{{"KUBERNETES_SERVICE_HOST", "10.96.0.1"}, {"KUBERNETES_SERVICE_PORT", "443"}}
	cases := []struct {
		name    string
		c       corev1.Container
		want    []envVar
		wantErr string
	}{
		{
			name: "values and references to earlier ones",
			c: corev1.Container{Env: []corev1.EnvVar{
				{Name: "A", Value: "a"}, {Name: "B", Value: "$(A)-b"}, {Name: "C", Value: "$(LATER)"}, {Name: "LATER", Value: "x"},
				{Name: "D", Value: "$$(A)"}, {Name: "E", Value: "$(KUBERNETES_SERVICE_HOST)"},
			}},
			want: append([]envVar{{"A", "a"}, {"B", "a-b"}, {"C", "$(LATER)"}, {"LATER", "x"}, {"D", "$(A)"}, {"E", "10.96.0.1"}}, services...),
		},
		{
			name: "downward API fields",
			c: corev1.Container{Env: []corev1.EnvVar{
				{Name: "NAME", ValueFrom: field("metadata.name")}, {Name: "NS", ValueFrom: field("metadata.namespace")},
				{Name: "UID", ValueFrom: field("metadata.uid")}, {Name: "APP", ValueFrom: field("metadata.labels['app']")},
				{Name: "NOTE", ValueFrom: field("metadata.annotations['note']")}, {Name: "NODE", ValueFrom: field("spec.nodeName")},
				{Name: "SA", ValueFrom: field("spec.serviceAccountName")}, {Name: "IP", ValueFrom: field("status.podIP")},
				{Name: "HOST", ValueFrom: field("status.hostIP")}, {Name: "LABELS", ValueFrom: field("metadata.labels")},
				{Name: "URL", Value: "http://$(IP):80"},
			}},
			want: append([]envVar{{"NAME", "web"}, {"NS", "ns"}, {"UID", "uid-1"}, {"APP", "web"}, {"NOTE", `a "quoted" value`},
				{"NODE", "node1"}, {"SA", "sa"}, {"IP", "10.244.0.5"}, {"HOST", "192.168.1.2"}, {"LABELS", "app=\"web\"\ntier=\"front\""},
				{"URL", "http://10.244.0.5:80"}}, services...),
		},
		{
			name: "resource fields with divisors and node defaults",
			c: corev1.Container{
				Resources: res(map[corev1.ResourceName]string{cpu: "250m", mem: "64Mi"}, map[corev1.ResourceName]string{mem: "128Mi"}),
				Env: []corev1.EnvVar{
					{Name: "CPU_REQ", ValueFrom: resField("requests.cpu", "")}, {Name: "CPU_REQ_M", ValueFrom: resField("requests.cpu", "1m")},
					{Name: "CPU_LIM", ValueFrom: resField("limits.cpu", "")}, {Name: "MEM_LIM", ValueFrom: resField("limits.memory", "1Mi")},
					{Name: "MEM_REQ", ValueFrom: resField("requests.memory", "")},
				},
			},
			want: append([]envVar{{"CPU_REQ", "1"}, {"CPU_REQ_M", "250"}, {"CPU_LIM", "4"}, {"MEM_LIM", "128"}, {"MEM_REQ", "67108864"}}, services...),
		},
		{
			name: "configMap and secret keys; env replaces envFrom",
			c: corev1.Container{
				EnvFrom: []corev1.EnvFromSource{
					{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cm"}}, Prefix: "CM_"},
					{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "sec"}}},
					{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "gone"}, Optional: ptr(true)}},
				},
				Env: []corev1.EnvVar{
					{Name: "COLOR", ValueFrom: cmKey("cm", "color", false)}, {Name: "PW", ValueFrom: secKey("sec", "password", false)},
					{Name: "CM_size", Value: "XL"}, {Name: "OPT", ValueFrom: cmKey("cm", "nokey", true)},
					{Name: "OPT2", ValueFrom: secKey("nosecret", "k", true)}, {Name: "MSG", Value: "$(COLOR) $(password)"},
				},
			},
			want: append([]envVar{{"CM_color", "blue"}, {"CM_size", "XL"}, {"password", "s3cret"}, {"COLOR", "blue"}, {"PW", "s3cret"},
				{"MSG", "blue s3cret"}}, services...),
		},
		{
			name: "env overrides a service variable",
			c:    corev1.Container{Env: []corev1.EnvVar{{Name: "KUBERNETES_SERVICE_PORT", Value: "6443"}}},
			want: []envVar{{"KUBERNETES_SERVICE_PORT", "6443"}, {"KUBERNETES_SERVICE_HOST", "10.96.0.1"}},
		},
		{
			name:    "missing configMap",
			c:       corev1.Container{Env: []corev1.EnvVar{{Name: "X", ValueFrom: cmKey("nope", "k", false)}}},
			wantErr: `configmaps "nope" not found`,
		},
		{
			name:    "missing configMap key",
			c:       corev1.Container{Env: []corev1.EnvVar{{Name: "X", ValueFrom: cmKey("cm", "nokey", false)}}},
			wantErr: "couldn't find key nokey in ConfigMap ns/cm",
		},
		{
			name:    "missing secret in envFrom",
			c:       corev1.Container{EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "nosec"}}}}},
			wantErr: `secrets "nosec" not found`,
		},
		{
			name:    "missing secret key",
			c:       corev1.Container{Env: []corev1.EnvVar{{Name: "X", ValueFrom: secKey("sec", "user", false)}}},
			wantErr: "couldn't find key user in Secret ns/sec",
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			pod := envPod()
			c.c.Name = "app"
			pod.Spec.Containers = []corev1.Container{c.c}
			got, err := makeEnv(context.Background(), pod, &pod.Spec.Containers[0], ec())
			if c.wantErr != "" {
				if err == nil || err.Error() != c.wantErr {
					t.Fatalf("error %v, want %q", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.want, got); diff != "" {
				t.Errorf("env (-want +got):\n%s", diff)
			}
		})
	}
}

func TestExpandCommand(t *testing.T) {
	env := []envVar{{"GREETING", "hello"}, {"NAME", "pod"}}
	got := expandCommand([]string{"echo", "$(GREETING) $(NAME)", "$(MISSING)", "$$(NAME)"}, env)
	want := []string{"echo", "hello pod", "$(MISSING)", "$(NAME)"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestServiceEnv(t *testing.T) {
	idx := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{})
	for _, s := range []*corev1.Service{
		{ObjectMeta: metav1.ObjectMeta{Name: "kubernetes", Namespace: "default"}, Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.1",
			Ports: []corev1.ServicePort{{Name: "https", Port: 443, Protocol: corev1.ProtocolTCP}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "my-db", Namespace: "ns"}, Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.9",
			Ports: []corev1.ServicePort{{Port: 5432}, {Name: "metrics", Port: 9187, Protocol: corev1.ProtocolUDP}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "headless", Namespace: "ns"}, Spec: corev1.ServiceSpec{ClusterIP: "None", Ports: []corev1.ServicePort{{Port: 80}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "elsewhere", Namespace: "other"}, Spec: corev1.ServiceSpec{ClusterIP: "10.96.0.7", Ports: []corev1.ServicePort{{Port: 80}}}},
	} {
		idx.Add(s)
	}
	lister := corelisters.NewServiceLister(idx)
	got := serviceEnv(lister, "ns", true)
	want := map[string]string{
		"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443", "KUBERNETES_SERVICE_PORT_HTTPS": "443",
		"KUBERNETES_PORT": "tcp://10.96.0.1:443", "KUBERNETES_PORT_443_TCP": "tcp://10.96.0.1:443",
		"KUBERNETES_PORT_443_TCP_PROTO": "tcp", "KUBERNETES_PORT_443_TCP_PORT": "443", "KUBERNETES_PORT_443_TCP_ADDR": "10.96.0.1",
		"MY_DB_SERVICE_HOST": "10.96.0.9", "MY_DB_SERVICE_PORT": "5432", "MY_DB_SERVICE_PORT_METRICS": "9187",
		"MY_DB_PORT": "tcp://10.96.0.9:5432", "MY_DB_PORT_5432_TCP": "tcp://10.96.0.9:5432", "MY_DB_PORT_5432_TCP_PROTO": "tcp",
		"MY_DB_PORT_5432_TCP_PORT": "5432", "MY_DB_PORT_5432_TCP_ADDR": "10.96.0.9",
		"MY_DB_PORT_9187_UDP": "udp://10.96.0.9:9187", "MY_DB_PORT_9187_UDP_PROTO": "udp", "MY_DB_PORT_9187_UDP_PORT": "9187",
		"MY_DB_PORT_9187_UDP_ADDR": "10.96.0.9",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// Without service links only the kubernetes service remains.
	for k := range serviceEnv(lister, "ns", false) {
		if !strings.HasPrefix(k, "KUBERNETES_") {
			t.Errorf("enableServiceLinks=false still has %s", k)
		}
	}
}
