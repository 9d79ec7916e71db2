package garbagecollector_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"

	"skiff.dev/skiff/internal/controllers/garbagecollector"
	"skiff.dev/skiff/internal/testenv"
)

const hold = "test.skiff.dev/hold" // a finalizer only the test removes

// chain is a Deployment → ReplicaSet → Pod chain made by hand, the way the
// workload controllers would make it.
type chain struct {
	ns     string
	deploy *appsv1.Deployment
	rs     *appsv1.ReplicaSet
	pod    *corev1.Pod
}

func TestCascade(t *testing.T) {
	env := testenv.Start(t, testenv.WithoutControllers)
	startGC(t, env)
	c := env.Client

	cases := []struct {
		name   string
		policy metav1.DeletionPropagation
		// podFinalizers are set on the Pod, to hold the cascade midway.
		podFinalizers []string
		check         func(t *testing.T, ch chain)
	}{{
		name:   "background",
		policy: metav1.DeletePropagationBackground,
		check: func(t *testing.T, ch chain) {
			waitGone(t, c, ch)
		},
	}, {
		name:          "foreground",
		policy:        metav1.DeletePropagationForeground,
		podFinalizers: []string{hold},
		check: func(t *testing.T, ch chain) {
			testenv.Eventually(t, "pod is being deleted", func(ctx context.Context) (bool, error) {
				p, err := c.CoreV1().Pods(ch.ns).Get(ctx, ch.pod.Name, metav1.GetOptions{})
				return err == nil && p.DeletionTimestamp != nil, err
			})
			// The pod's finalizer holds the ReplicaSet, which holds the
			// Deployment.
			for _, m := range []metav1.Object{getRS(t, c, ch), getDeploy(t, c, ch)} {
				if m.GetDeletionTimestamp() == nil || !slices.Contains(m.GetFinalizers(), metav1.FinalizerDeleteDependents) {
					t.Fatalf("%s: deletionTimestamp %v finalizers %v, want deleting in the foreground", m.GetName(), m.GetDeletionTimestamp(), m.GetFinalizers())
				}
			}
			removePodFinalizers(t, c, ch)
			waitGone(t, c, ch)
		},
	}, {
		name:   "orphan",
		policy: metav1.DeletePropagationOrphan,
		check: func(t *testing.T, ch chain) {
			testenv.Eventually(t, "deployment is gone", func(ctx context.Context) (bool, error) {
				_, err := c.AppsV1().Deployments(ch.ns).Get(ctx, ch.deploy.Name, metav1.GetOptions{})
				return apierrors.IsNotFound(err), ignoreNotFound(err)
			})
			if rs := getRS(t, c, ch); len(rs.OwnerReferences) != 0 {
				t.Errorf("replicaset owners = %v, want none", rs.OwnerReferences)
			}
			pod, err := c.CoreV1().Pods(ch.ns).Get(t.Context(), ch.pod.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatalf("pod: %v", err)
			}
			if len(pod.OwnerReferences) != 1 || pod.OwnerReferences[0].UID != ch.rs.UID {
				t.Errorf("pod owners = %v, want the replicaset", pod.OwnerReferences)
			}
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ch := makeChain(t, c, tc.name, tc.podFinalizers...)
			deleteWith(t, c, ch, tc.policy)
			tc.check(t, ch)
		})
	}
}

func TestOwnerReferences(t *testing.T) {
	env := testenv.Start(t, testenv.WithoutControllers)
	startGC(t, env)
	c := env.Client

	cases := []struct {
		name string
		// owners are created in the dependent's namespace unless clusterScoped.
		owners        int
		clusterScoped bool
		// otherNamespace puts the owner in another namespace than the
		// dependent, which makes the reference dangling from the start.
		otherNamespace bool
		// deleteOwners is how many of the owners (first ones) the test deletes.
		deleteOwners int
		wantGone     bool
	}{
		{name: "one of two owners deleted", owners: 2, deleteOwners: 1},
		{name: "both owners deleted", owners: 2, deleteOwners: 2, wantGone: true},
		{name: "cluster-scoped owner deleted", owners: 1, clusterScoped: true, deleteOwners: 1, wantGone: true},
		{name: "cluster-scoped owner kept", owners: 1, clusterScoped: true},
		{name: "owner in another namespace", owners: 1, otherNamespace: true, wantGone: true},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			ns := makeNamespace(t, c, fmt.Sprintf("refs-%d", i))
			ownerNS := ns
			if tc.otherNamespace {
				ownerNS = makeNamespace(t, c, fmt.Sprintf("refs-%d-other", i))
			}
			var refs []metav1.OwnerReference
			var deletes []func() error
			for j := range tc.owners {
				name := fmt.Sprintf("owner-%d-%d", i, j)
				if tc.clusterScoped {
					n, err := c.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
					if err != nil {
						t.Fatal(err)
					}
					t.Cleanup(func() { _ = c.CoreV1().Nodes().Delete(context.Background(), name, metav1.DeleteOptions{}) })
					refs = append(refs, ownerRef("v1", "Node", n.Name, n.UID))
					deletes = append(deletes, func() error { return c.CoreV1().Nodes().Delete(ctx, name, metav1.DeleteOptions{}) })
					continue
				}
				cm, err := c.CoreV1().ConfigMaps(ownerNS).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
				if err != nil {
					t.Fatal(err)
				}
				refs = append(refs, ownerRef("v1", "ConfigMap", cm.Name, cm.UID))
				deletes = append(deletes, func() error { return c.CoreV1().ConfigMaps(ownerNS).Delete(ctx, name, metav1.DeleteOptions{}) })
			}
			dep, err := c.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "dependent", OwnerReferences: refs}}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			for _, del := range deletes[:tc.deleteOwners] {
				if err := del(); err != nil {
					t.Fatal(err)
				}
			}
			kept := refs[tc.deleteOwners:]
			if tc.wantGone {
				testenv.Eventually(t, "dependent is gone", func(ctx context.Context) (bool, error) {
					_, err := c.CoreV1().Secrets(ns).Get(ctx, dep.Name, metav1.GetOptions{})
					return apierrors.IsNotFound(err), ignoreNotFound(err)
				})
				return
			}
			testenv.Eventually(t, "dependent keeps only its live owners", func(ctx context.Context) (bool, error) {
				s, err := c.CoreV1().Secrets(ns).Get(ctx, dep.Name, metav1.GetOptions{})
				if err != nil {
					return false, err
				}
				return slices.EqualFunc(s.OwnerReferences, kept, func(a, b metav1.OwnerReference) bool { return a.UID == b.UID }), nil
			})
			// Give the collector a moment to do anything wrong.
			time.Sleep(200 * time.Millisecond)
			if _, err := c.CoreV1().Secrets(ns).Get(ctx, dep.Name, metav1.GetOptions{}); err != nil {
				t.Fatalf("dependent with a live owner: %v", err)
			}
		})
	}
}

// TestRestart stops the collector midway through a cascade and checks
// that a new one finishes it from what the API holds.
func TestRestart(t *testing.T) {
	env := testenv.Start(t, testenv.WithoutControllers)
	c := env.Client

	t.Run("foreground", func(t *testing.T) {
		stop := startGC(t, env)
		ch := makeChain(t, c, "restart-fg", hold)
		deleteWith(t, c, ch, metav1.DeletePropagationForeground)
		testenv.Eventually(t, "pod is being deleted", func(ctx context.Context) (bool, error) {
			p, err := c.CoreV1().Pods(ch.ns).Get(ctx, ch.pod.Name, metav1.GetOptions{})
			return err == nil && p.DeletionTimestamp != nil, err
		})
		stop()
		removePodFinalizers(t, c, ch)
		startGC(t, env)
		waitGone(t, c, ch)
	})
	t.Run("background while stopped", func(t *testing.T) {
		ch := makeChain(t, c, "restart-bg")
		deleteWith(t, c, ch, metav1.DeletePropagationBackground)
		startGC(t, env)
		waitGone(t, c, ch)
	})
}

// startGC runs a collector until the returned stop is called or the test
// ends.
func startGC(t *testing.T, env *testenv.Env) (stop func()) {
	t.Helper()
	mc, err := metadata.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	gc := garbagecollector.New(mc, testenv.Logger(t))
	return testenv.Run(t, "garbage collector", func(ctx context.Context) error { return gc.Run(ctx, 2) })
}

func makeChain(t *testing.T, c kubernetes.Interface, name string, podFinalizers ...string) chain {
	t.Helper()
	ctx := t.Context()
	ch := chain{ns: makeNamespace(t, c, name)}
	labels := map[string]string{"app": name}
	tmpl := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "example.com/app:1"}}},
	}
	var err error
	ch.deploy, err = c.AppsV1().Deployments(ch.ns).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: tmpl},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ch.rs, err = c.AppsV1().ReplicaSets(ch.ns).Create(ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-1", Labels: labels,
			OwnerReferences: []metav1.OwnerReference{controllerRef("apps/v1", "Deployment", ch.deploy.Name, ch.deploy.UID)}},
		Spec: appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: tmpl},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ch.pod, err = c.CoreV1().Pods(ch.ns).Create(ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name + "-1-a", Labels: labels, Finalizers: podFinalizers,
			OwnerReferences: []metav1.OwnerReference{controllerRef("apps/v1", "ReplicaSet", ch.rs.Name, ch.rs.UID)}},
		Spec: tmpl.Spec,
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { removePodFinalizers(t, c, ch) })
	return ch
}

func deleteWith(t *testing.T, c kubernetes.Interface, ch chain, policy metav1.DeletionPropagation) {
	t.Helper()
	if err := c.AppsV1().Deployments(ch.ns).Delete(t.Context(), ch.deploy.Name, metav1.DeleteOptions{PropagationPolicy: &policy}); err != nil {
		t.Fatal(err)
	}
}

// waitGone waits until all three objects of the chain are gone.
func waitGone(t *testing.T, c kubernetes.Interface, ch chain) {
	t.Helper()
	testenv.Eventually(t, "deployment, replicaset and pod are gone", func(ctx context.Context) (bool, error) {
		_, err1 := c.AppsV1().Deployments(ch.ns).Get(ctx, ch.deploy.Name, metav1.GetOptions{})
		_, err2 := c.AppsV1().ReplicaSets(ch.ns).Get(ctx, ch.rs.Name, metav1.GetOptions{})
		_, err3 := c.CoreV1().Pods(ch.ns).Get(ctx, ch.pod.Name, metav1.GetOptions{})
		for _, err := range []error{err1, err2, err3} {
			if !apierrors.IsNotFound(err) {
				return false, ignoreNotFound(err)
			}
		}
		return true, nil
	})
}

func removePodFinalizers(t *testing.T, c kubernetes.Interface, ch chain) {
	patch, _ := json.Marshal(map[string]any{"metadata": map[string]any{"finalizers": nil}})
	_, err := c.CoreV1().Pods(ch.ns).Patch(context.Background(), ch.pod.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Errorf("remove pod finalizers: %v", err)
	}
}

func getRS(t *testing.T, c kubernetes.Interface, ch chain) *appsv1.ReplicaSet {
	t.Helper()
	rs, err := c.AppsV1().ReplicaSets(ch.ns).Get(t.Context(), ch.rs.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("replicaset: %v", err)
	}
	return rs
}

func getDeploy(t *testing.T, c kubernetes.Interface, ch chain) *appsv1.Deployment {
	t.Helper()
	d, err := c.AppsV1().Deployments(ch.ns).Get(t.Context(), ch.deploy.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("deployment: %v", err)
	}
	return d
}

func makeNamespace(t *testing.T, c kubernetes.Interface, name string) string {
	t.Helper()
	if _, err := c.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return name
}

func controllerRef(apiVersion, kind, name string, uid types.UID) metav1.OwnerReference {
	ref := ownerRef(apiVersion, kind, name, uid)
	yes := true
	ref.Controller, ref.BlockOwnerDeletion = &yes, &yes
	return ref
}

func ownerRef(apiVersion, kind, name string, uid types.UID) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: name, UID: uid}
}

func ignoreNotFound(err error) error {
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}
