package apiserver_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"skiff.dev/skiff/internal/testenv"
)

func bindingPod(name string, edit ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}},
	}
	for _, e := range edit {
		e(p)
	}
	return p
}

func bindTo(name, node string) *corev1.Binding {
	return &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: name}, Target: corev1.ObjectReference{Kind: "Node", Name: node}}
}

// TestBinding binds pods through pods/{name}/binding the way schedulers do
// (client-go's Bind) and checks upstream's answers.
func TestBinding(t *testing.T) {
	env := testenv.Start(t, testenv.WithoutControllers)
	ctx := context.Background()
	pods := env.Client.CoreV1().Pods("default")

	cases := []struct {
		name    string
		pod     *corev1.Pod
		binding func(p *corev1.Pod) *corev1.Binding
		opts    metav1.CreateOptions
		// check gets the error of the first Bind and the pod afterwards.
		check func(t *testing.T, err error, p *corev1.Pod)
	}{{
		name:    "binds",
		pod:     bindingPod("bind-ok"),
		binding: func(p *corev1.Pod) *corev1.Binding { b := bindTo(p.Name, "n1"); b.UID = p.UID; return b },
		check: func(t *testing.T, err error, p *corev1.Pod) {
			if err != nil {
				t.Fatal(err)
			}
			if p.Spec.NodeName != "n1" {
				t.Errorf("nodeName %q, want n1", p.Spec.NodeName)
			}
			if c := condition(p, corev1.PodScheduled); c == nil || c.Status != corev1.ConditionTrue {
				t.Errorf("PodScheduled %+v, want True", c)
			}
			// A second binding is refused, as upstream refuses it.
			err = pods.Bind(ctx, bindTo(p.Name, "n2"), metav1.CreateOptions{})
			if !apierrors.IsConflict(err) || !strings.Contains(err.Error(), `pod bind-ok is already assigned to node "n1"`) {
				t.Errorf("second bind: %v, want 409 already assigned", err)
			}
		},
	}, {
		name: "annotations are merged",
		pod:  bindingPod("bind-annotations", func(p *corev1.Pod) { p.Annotations = map[string]string{"a": "1"} }),
		binding: func(p *corev1.Pod) *corev1.Binding {
			b := bindTo(p.Name, "n1")
			b.Annotations = map[string]string{"b": "2"}
			return b
		},
		check: func(t *testing.T, err error, p *corev1.Pod) {
			if err != nil {
				t.Fatal(err)
			}
			if p.Annotations["a"] != "1" || p.Annotations["b"] != "2" {
				t.Errorf("annotations %v, want a=1 b=2", p.Annotations)
			}
		},
	}, {
		name:    "dry run changes nothing",
		pod:     bindingPod("bind-dry"),
		binding: func(p *corev1.Pod) *corev1.Binding { return bindTo(p.Name, "n1") },
		opts:    metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}},
		check: func(t *testing.T, err error, p *corev1.Pod) {
			if err != nil || p.Spec.NodeName != "" {
				t.Errorf("err %v nodeName %q, want success and no node", err, p.Spec.NodeName)
			}
		},
	}, {
		name:    "UID precondition",
		pod:     bindingPod("bind-uid"),
		binding: func(p *corev1.Pod) *corev1.Binding { b := bindTo(p.Name, "n1"); b.UID = types.UID("other"); return b },
		check: func(t *testing.T, err error, p *corev1.Pod) {
			if !apierrors.IsConflict(err) || p.Spec.NodeName != "" {
				t.Errorf("err %v nodeName %q, want 409 and no node", err, p.Spec.NodeName)
			}
		},
	}, {
		name: "pod being deleted",
		pod: bindingPod("bind-deleting", func(p *corev1.Pod) {
			p.Finalizers = []string{"test.skiff.dev/hold"}
		}),
		binding: func(p *corev1.Pod) *corev1.Binding {
			if err := pods.Delete(ctx, p.Name, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			return bindTo(p.Name, "n1")
		},
		check: func(t *testing.T, err error, p *corev1.Pod) {
			if !apierrors.IsConflict(err) || !strings.Contains(err.Error(), "is being deleted, cannot be assigned to a host") {
				t.Errorf("err %v, want 409 being deleted", err)
			}
			p.Finalizers = nil
			if _, err := pods.Update(ctx, p, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
		},
	}, {
		name: "scheduling gates",
		pod: bindingPod("bind-gated", func(p *corev1.Pod) {
			p.Spec.SchedulingGates = []corev1.PodSchedulingGate{{Name: "example.com/wait"}}
		}),
		binding: func(p *corev1.Pod) *corev1.Binding { return bindTo(p.Name, "n1") },
		check: func(t *testing.T, err error, p *corev1.Pod) {
			if !apierrors.IsConflict(err) || !strings.Contains(err.Error(), "non-empty .spec.schedulingGates") {
				t.Errorf("err %v, want 409 gated", err)
			}
		},
	}, {
		name:    "no target",
		pod:     bindingPod("bind-no-target"),
		binding: func(p *corev1.Pod) *corev1.Binding { return bindTo(p.Name, "") },
		check: func(t *testing.T, err error, p *corev1.Pod) {
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "target.name: Required value") {
				t.Errorf("err %v, want 422 target.name required", err)
			}
		},
	}, {
		name: "target of another kind",
		pod:  bindingPod("bind-kind"),
		binding: func(p *corev1.Pod) *corev1.Binding {
			b := bindTo(p.Name, "n1")
			b.Target.Kind = "Pod"
			return b
		},
		check: func(t *testing.T, err error, p *corev1.Pod) {
			if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "target.kind") {
				t.Errorf("err %v, want 422 target.kind", err)
			}
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := pods.Create(ctx, tc.pod, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			err = pods.Bind(ctx, tc.binding(p), tc.opts)
			got, getErr := pods.Get(ctx, p.Name, metav1.GetOptions{})
			if getErr != nil {
				t.Fatal(getErr)
			}
			tc.check(t, err, got)
		})
	}

	t.Run("missing pod", func(t *testing.T) {
		err := pods.Bind(ctx, bindTo("nope", "n1"), metav1.CreateOptions{})
		if !apierrors.IsNotFound(err) {
			t.Errorf("err %v, want 404", err)
		}
	})
}

// TestBindingOverHTTP covers what client-go does not send: the legacy
// /bindings collection, a name that differs from the URL, other verbs.
func TestBindingOverHTTP(t *testing.T) {
	env := testenv.Start(t, testenv.WithoutControllers)
	ctx := context.Background()
	client, err := rest.HTTPClientFor(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	pods := env.Client.CoreV1().Pods("default")
	for _, n := range []string{"legacy", "mismatch", "verbs"} {
		if _, err := pods.Create(ctx, bindingPod(n), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	do := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, env.Config.Host+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(data)
	}
	binding := func(name, node string) string {
		return `{"apiVersion":"v1","kind":"Binding","metadata":{"name":"` + name + `"},"target":{"apiVersion":"v1","kind":"Node","name":"` + node + `"}}`
	}
	cases := []struct {
		name, method, path, body string
		code                     int
		want                     string
	}{
		{"legacy collection", "POST", "/api/v1/namespaces/default/bindings", binding("legacy", "n1"), 201, `"status":"Success"`},
		{"legacy collection, bound", "POST", "/api/v1/namespaces/default/bindings", binding("legacy", "n2"), 409, `pod legacy is already assigned to node \"n1\"`},
		{"name differs from the URL", "POST", "/api/v1/namespaces/default/pods/mismatch/binding", binding("other", "n1"), 400, "name in URL does not match name in Binding object"},
		{"wrong kind", "POST", "/api/v1/namespaces/default/pods/verbs/binding", `{"kind":"Pod","metadata":{"name":"verbs"}}`, 400, "does not match the endpoint's kind"},
		{"get", "GET", "/api/v1/namespaces/default/pods/verbs/binding", "", 405, ""},
		{"put", "PUT", "/api/v1/namespaces/default/pods/verbs/binding", binding("verbs", "n1"), 405, ""},
		{"not valid JSON", "POST", "/api/v1/namespaces/default/pods/verbs/binding", "{", 400, "cannot be handled as a Binding"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := do(tc.method, tc.path, tc.body)
			if code != tc.code || !strings.Contains(body, tc.want) {
				t.Errorf("%s %s: %d %s, want %d with %q", tc.method, tc.path, code, body, tc.code, tc.want)
			}
		})
	}
	p, err := pods.Get(ctx, "legacy", metav1.GetOptions{})
	if err != nil || p.Spec.NodeName != "n1" {
		t.Errorf("legacy pod: %v nodeName %q, want n1", err, p.Spec.NodeName)
	}
	for _, n := range []string{"mismatch", "verbs"} {
		if p, _ := pods.Get(ctx, n, metav1.GetOptions{}); p.Spec.NodeName != "" {
			t.Errorf("%s bound to %q by a refused request", n, p.Spec.NodeName)
		}
	}
	// Protobuf, as schedulers configured for it send.
	cfg := rest.CopyConfig(env.Config)
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	pc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := pc.CoreV1().Pods("default").Bind(ctx, bindTo("verbs", "n3"), metav1.CreateOptions{}); err != nil {
		t.Fatalf("protobuf bind: %v", err)
	}
	if p, _ := pods.Get(ctx, "verbs", metav1.GetOptions{}); p.Spec.NodeName != "n3" {
		t.Errorf("protobuf bind: nodeName %q, want n3", p.Spec.NodeName)
	}
}

func condition(p *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == t {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}
