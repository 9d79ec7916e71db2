package namespace_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"

	"skiff.dev/skiff/internal/controllers/namespace"
	"skiff.dev/skiff/internal/testenv"
)

const hold = "test.skiff.dev/hold" // a finalizer only the test removes

func TestDeleteNamespace(t *testing.T) {
	env := testenv.Start(t, testenv.WithoutControllers)
	c := env.Client
	start(t, env)
	ctx := t.Context()
	ns := fill(t, c, "doomed")

	if err := c.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "only the held object is left", func(ctx context.Context) (bool, error) {
		cms, err := c.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		secrets, err := c.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		deploys, err := c.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		return len(cms.Items) == 1 && cms.Items[0].Name == "held" && cms.Items[0].DeletionTimestamp != nil &&
			len(secrets.Items) == 0 && len(deploys.Items) == 0, nil
	})
	testenv.Eventually(t, "the namespace reports what holds it", func(ctx context.Context) (bool, error) {
		got, err := c.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if got.Status.Phase != corev1.NamespaceTerminating {
			t.Fatalf("phase = %q, want Terminating", got.Status.Phase)
		}
		return hasCondition(got, corev1.NamespaceContentRemaining, "configmaps has 1 resource instances") &&
			hasCondition(got, corev1.NamespaceFinalizersRemaining, hold+" in 1 resource instances"), nil
	})

	_, err := c.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "late"}}, metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) {
		t.Errorf("create in a terminating namespace: err = %v, want 403 Forbidden", err)
	}

	release(t, c, ns)
	waitGone(t, c, ns)
	cms, err := c.CoreV1().ConfigMaps(ns).List(ctx, metav1.ListOptions{})
	if err != nil || len(cms.Items) != 0 {
		t.Errorf("configmaps left in the deleted namespace: %v, %v", cms, err)
	}
}

// TestRestart stops the controller midway and checks that a new one
// finishes from what the API holds.
func TestRestart(t *testing.T) {
	env := testenv.Start(t, testenv.WithoutControllers)
	c := env.Client

	cases := []struct {
		name string
		// midway stops the first controller once content deletion has
		// begun; without it no controller runs when the namespace is deleted.
		midway bool
	}{
		{name: "midway", midway: true},
		{name: "deleted while stopped"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			ns := fill(t, c, strings.ReplaceAll(tc.name, " ", "-"))
			var stop func()
			if tc.midway {
				stop = start(t, env)
			}
			if err := c.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			if tc.midway {
				testenv.Eventually(t, "the held object is being deleted", func(ctx context.Context) (bool, error) {
					cm, err := c.CoreV1().ConfigMaps(ns).Get(ctx, "held", metav1.GetOptions{})
					return err == nil && cm.DeletionTimestamp != nil, err
				})
				stop()
			}
			release(t, c, ns)
			start(t, env)
			waitGone(t, c, ns)
		})
	}
}

// fill makes namespace name with two ConfigMaps, a Secret, a Deployment
// and a ConfigMap "held" by a finalizer only release removes.
func fill(t *testing.T, c kubernetes.Interface, name string) string {
	t.Helper()
	ctx := t.Context()
	if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { release(t, c, name) })
	for _, cm := range []*corev1.ConfigMap{
		{ObjectMeta: metav1.ObjectMeta{Name: "one"}, Data: map[string]string{"k": "v"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "two"}},
		{ObjectMeta: metav1.ObjectMeta{Name: "held", Finalizers: []string{hold}}},
	} {
		if _, err := c.CoreV1().ConfigMaps(name).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.CoreV1().Secrets(name).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "secret"}, StringData: map[string]string{"k": "v"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{"app": "web"}
	if _, err := c.AppsV1().Deployments(name).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "example.com/web:1"}}},
			},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return name
}

// release removes the test's finalizer from the held ConfigMap.
func release(t *testing.T, c kubernetes.Interface, ns string) {
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"finalizers": nil}})
	_, err := c.CoreV1().ConfigMaps(ns).Patch(context.Background(), "held", types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("release held object: %v", err)
	}
}

func waitGone(t *testing.T, c kubernetes.Interface, ns string) {
	t.Helper()
	testenv.Eventually(t, "the namespace is gone", func(ctx context.Context) (bool, error) {
		_, err := c.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
}

func hasCondition(ns *corev1.Namespace, typ corev1.NamespaceConditionType, msg string) bool {
	for _, c := range ns.Status.Conditions {
		if c.Type == typ {
			return c.Status == corev1.ConditionTrue && strings.Contains(c.Message, msg)
		}
	}
	return false
}

// start runs a controller until the returned stop is called or the test
// ends.
func start(t *testing.T, env *testenv.Env) (stop func()) {
	t.Helper()
	mc, err := metadata.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	c := namespace.New(env.Client, mc, testenv.Logger(t))
	return testenv.Run(t, "namespace controller", func(ctx context.Context) error { return c.Run(ctx, 2) })
}
