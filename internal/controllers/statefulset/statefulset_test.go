package statefulset_test

import (
	"context"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"skiff.dev/skiff/internal/controllers/statefulset"
	"skiff.dev/skiff/internal/testenv"
)

// TestOrderedReady: pods are created in ordinal order, each only once the
// one before it is Running and Ready, each after its claim; scaling down
// removes the highest ordinal first, one at a time, and keeps the claims.
func TestOrderedReady(t *testing.T) {
	cl := startCluster(t)
	ns := cl.namespace(t, "ordered")
	log := watchPods(t, cl.client, ns)
	cl.createSet(t, ns, newSet(3, "nginx:1", false))

	for i, name := range []string{"web-0", "web-1", "web-2"} {
		testenv.Eventually(t, name+" is created", func(ctx context.Context) (bool, error) {
			_, err := cl.pod(ctx, ns, name)
			return err == nil, nil
		})
		if next := "web-" + strconv.Itoa(i+1); i < 2 {
			if _, err := cl.pod(t.Context(), ns, next); !apierrors.IsNotFound(err) {
				t.Fatalf("%s exists (err %v) before %s is Ready", next, err, name)
			}
		}
		checkMember(t, cl, log, ns, i)
		cl.makeReady(t, ns, name)
	}
	testenv.Eventually(t, "the status counts 3 ready replicas", func(ctx context.Context) (bool, error) {
		set, err := cl.set(ctx, ns)
		if err != nil {
			return false, err
		}
		st := set.Status
		return st.Replicas == 3 && st.ReadyReplicas == 3 && st.AvailableReplicas == 3 && st.CurrentReplicas == 3 &&
			st.UpdatedReplicas == 3 && st.CurrentRevision != "" && st.CurrentRevision == st.UpdateRevision &&
			st.ObservedGeneration == set.Generation, nil
	})
	created, _, notReady := log.snapshot()
	if want := []string{"web-0", "web-1", "web-2"}; !slices.Equal(created, want) {
		t.Errorf("creation order %v, want %v", created, want)
	}
	if len(notReady) > 0 {
		t.Errorf("created while the previous pod was not Ready: %v", notReady)
	}

	cl.patchSet(t, ns, "web", map[string]any{"spec": map[string]any{"replicas": 1}})
	testenv.Eventually(t, "web-1 and web-2 are gone", func(ctx context.Context) (bool, error) {
		_, deleted, _ := log.snapshot()
		return len(deleted) == 2, nil
	})
	if _, deleted, _ := log.snapshot(); !slices.Equal(deleted, []string{"web-2", "web-1"}) {
		t.Errorf("deletion order %v, want [web-2 web-1]", deleted)
	}
	testenv.Eventually(t, "the status counts 1 replica", func(ctx context.Context) (bool, error) {
		set, err := cl.set(ctx, ns)
		return err == nil && set.Status.Replicas == 1 && set.Status.ReadyReplicas == 1, err
	})
	claims, err := cl.client.CoreV1().PersistentVolumeClaims(ns).List(t.Context(), metav1.ListOptions{})
	if err != nil || len(claims.Items) != 3 {
		t.Errorf("claims after scale-down: %d, %v; want all 3 retained", len(claims.Items), err)
	}
}

// checkMember checks the identity and storage of web-<ord>: hostname,
// subdomain, labels, owner, and a claim created before the pod that the
// pod's volume names.
func checkMember(t *testing.T, cl *cluster, log *podLog, ns string, ord int) {
	t.Helper()
	name := "web-" + strconv.Itoa(ord)
	pod, err := cl.pod(t.Context(), ns, name)
	if err != nil {
		t.Fatal(err)
	}
	if pod.Spec.Hostname != name || pod.Spec.Subdomain != "web" {
		t.Errorf("%s: hostname %q subdomain %q", name, pod.Spec.Hostname, pod.Spec.Subdomain)
	}
	if pod.Labels[appsv1.StatefulSetPodNameLabel] != name || pod.Labels[appsv1.PodIndexLabel] != strconv.Itoa(ord) ||
		pod.Labels[appsv1.ControllerRevisionHashLabelKey] == "" || pod.Labels["app"] != "web" {
		t.Errorf("%s: labels %v", name, pod.Labels)
	}
	if ref := metav1.GetControllerOf(pod); ref == nil || ref.Kind != "StatefulSet" || ref.Name != "web" {
		t.Errorf("%s: controller %v", name, ref)
	}
	claimName := "www-web-" + strconv.Itoa(ord)
	var vol *corev1.Volume
	for i := range pod.Spec.Volumes {
		if pod.Spec.Volumes[i].Name == "www" {
			vol = &pod.Spec.Volumes[i]
		}
	}
	if vol == nil || vol.PersistentVolumeClaim == nil || vol.PersistentVolumeClaim.ClaimName != claimName {
		t.Errorf("%s: volume www = %+v, want claim %s", name, vol, claimName)
	}
	claim, err := cl.client.CoreV1().PersistentVolumeClaims(ns).Get(t.Context(), claimName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("claim %s: %v", claimName, err)
	}
	if claim.Labels["app"] != "web" || claim.Spec.Resources.Requests.Storage().String() != "1Gi" {
		t.Errorf("claim %s: labels %v, spec %+v", claimName, claim.Labels, claim.Spec)
	}
	if created := log.createdRV(name); rv(t, claim.ResourceVersion) >= rv(t, created) {
		t.Errorf("claim %s (rv %s) was not created before pod %s (rv %s)", claimName, claim.ResourceVersion, name, created)
	}
}

func rv(t *testing.T, s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("resourceVersion %q: %v", s, err)
	}
	return n
}

// TestPartitionedRollingUpdate: an update with a partition replaces only
// the pods at or above it, highest ordinal first; pods below it are
// recreated at the old revision; lowering the partition finishes the
// rollout and makes the update revision current.
func TestPartitionedRollingUpdate(t *testing.T) {
	cl := startCluster(t)
	ns := cl.namespace(t, "partition")
	cl.createSet(t, ns, newSet(3, "nginx:1", true))
	waitRolledOut(t, cl, ns, 3)
	set, err := cl.set(t.Context(), ns)
	if err != nil {
		t.Fatal(err)
	}
	oldRev := set.Status.CurrentRevision
	log := watchPods(t, cl.client, ns)

	cl.patchSet(t, ns, "web", map[string]any{"spec": map[string]any{
		"updateStrategy": map[string]any{"type": "RollingUpdate", "rollingUpdate": map[string]any{"partition": 1}},
		"template":       map[string]any{"spec": map[string]any{"containers": []any{map[string]any{"name": "web", "image": "nginx:2"}}}},
	}})
	var newRev string
	testenv.Eventually(t, "web-2 and web-1 are updated", func(ctx context.Context) (bool, error) {
		set, err := cl.set(ctx, ns)
		if err != nil {
			return false, err
		}
		st := set.Status
		newRev = st.UpdateRevision
		return st.UpdatedReplicas == 2 && st.CurrentReplicas == 1 && st.ReadyReplicas == 3 &&
			st.CurrentRevision == oldRev && st.UpdateRevision != oldRev, nil
	})
	images := func() map[string]string {
		out := map[string]string{}
		for _, name := range []string{"web-0", "web-1", "web-2"} {
			pod, err := cl.pod(t.Context(), ns, name)
			if err != nil {
				t.Fatal(err)
			}
			out[name] = pod.Spec.Containers[0].Image + " " + pod.Labels[appsv1.ControllerRevisionHashLabelKey]
		}
		return out
	}
	got := images()
	want := map[string]string{"web-0": "nginx:1 " + oldRev, "web-1": "nginx:2 " + newRev, "web-2": "nginx:2 " + newRev}
	for name := range want {
		if got[name] != want[name] {
			t.Errorf("%s: %s, want %s", name, got[name], want[name])
		}
	}
	if _, deleted, _ := log.snapshot(); !slices.Equal(deleted, []string{"web-2", "web-1"}) {
		t.Errorf("update deleted %v, want [web-2 web-1]", deleted)
	}
	if out := cl.kubectl(t, "-n", ns, "rollout", "status", "statefulset/web", "--timeout=30s"); !strings.Contains(out, "partitioned roll out complete: 2 new pods have been updated") {
		t.Errorf("kubectl rollout status: %s", out)
	}

	// A pod below the partition comes back at the current revision.
	web0, _ := cl.pod(t.Context(), ns, "web-0")
	if err := cl.client.CoreV1().Pods(ns).Delete(t.Context(), "web-0", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "web-0 is recreated", func(ctx context.Context) (bool, error) {
		pod, err := cl.pod(ctx, ns, "web-0")
		return err == nil && pod.UID != web0.UID && podReady(pod), nil
	})
	if got := images()["web-0"]; got != want["web-0"] {
		t.Errorf("recreated web-0: %s, want %s", got, want["web-0"])
	}

	cl.patchSet(t, ns, "web", map[string]any{"spec": map[string]any{
		"updateStrategy": map[string]any{"rollingUpdate": map[string]any{"partition": 0}},
	}})
	testenv.Eventually(t, "the rollout completes", func(ctx context.Context) (bool, error) {
		set, err := cl.set(ctx, ns)
		if err != nil {
			return false, err
		}
		st := set.Status
		var ann struct{ Name string }
		_ = json.Unmarshal([]byte(set.Annotations[statefulset.CurrentRevisionAnnotation]), &ann)
		return st.UpdatedReplicas == 3 && st.CurrentReplicas == 3 && st.CurrentRevision == newRev && ann.Name == newRev, nil
	})
	if got := images()["web-0"]; got != "nginx:2 "+newRev {
		t.Errorf("web-0 after the rollout: %s", got)
	}
	if out := cl.kubectl(t, "-n", ns, "describe", "statefulset", "web"); !strings.Contains(out, "SuccessfulCreate") || !strings.Contains(out, "create Claim www-web-0 Pod web-0 in StatefulSet web success") {
		t.Errorf("kubectl describe shows no events:\n%s", out)
	}
}

// waitRolledOut waits until n pods are ready at one revision.
func waitRolledOut(t *testing.T, cl *cluster, ns string, n int32) {
	t.Helper()
	testenv.Eventually(t, "the set is rolled out", func(ctx context.Context) (bool, error) {
		set, err := cl.set(ctx, ns)
		if err != nil {
			return false, err
		}
		st := set.Status
		return st.ReadyReplicas == n && st.UpdatedReplicas == n && st.CurrentRevision == st.UpdateRevision && st.Replicas == n, nil
	})
}

// TestParallel: Parallel pod management creates and deletes all pods at
// once, without waiting for readiness.
func TestParallel(t *testing.T) {
	cl := startCluster(t)
	ns := cl.namespace(t, "parallel")
	set := newSet(3, "nginx:1", false)
	set.Spec.PodManagementPolicy = appsv1.ParallelPodManagement
	cl.createSet(t, ns, set)
	testenv.Eventually(t, "all three pods exist while none is Ready", func(ctx context.Context) (bool, error) {
		pods, err := cl.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		return err == nil && len(pods.Items) == 3, err
	})
	cl.patchSet(t, ns, "web", map[string]any{"spec": map[string]any{"replicas": 0}})
	testenv.Eventually(t, "all pods are gone", func(ctx context.Context) (bool, error) {
		pods, err := cl.client.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		return err == nil && len(pods.Items) == 0, err
	})
}

// TestOnDelete: a template change leaves pods alone; a pod deleted by hand
// comes back at the new revision.
func TestOnDelete(t *testing.T) {
	cl := startCluster(t)
	ns := cl.namespace(t, "ondelete")
	set := newSet(2, "nginx:1", true)
	set.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}
	cl.createSet(t, ns, set)
	waitRolledOut(t, cl, ns, 2)
	cl.patchSet(t, ns, "web", map[string]any{"spec": map[string]any{
		"template": map[string]any{"spec": map[string]any{"containers": []any{map[string]any{"name": "web", "image": "nginx:2"}}}},
	}})
	testenv.Eventually(t, "the status has the new update revision", func(ctx context.Context) (bool, error) {
		set, err := cl.set(ctx, ns)
		return err == nil && set.Status.ObservedGeneration == set.Generation && set.Status.UpdatedReplicas == 0, err
	})
	for _, name := range []string{"web-0", "web-1"} {
		if pod, err := cl.pod(t.Context(), ns, name); err != nil || pod.Spec.Containers[0].Image != "nginx:1" || pod.DeletionTimestamp != nil {
			t.Fatalf("%s touched by an OnDelete update: %v", name, err)
		}
	}
	old, _ := cl.pod(t.Context(), ns, "web-1")
	if err := cl.client.CoreV1().Pods(ns).Delete(t.Context(), "web-1", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "web-1 comes back at the new revision", func(ctx context.Context) (bool, error) {
		pod, err := cl.pod(ctx, ns, "web-1")
		return err == nil && pod.UID != old.UID && pod.Spec.Containers[0].Image == "nginx:2", nil
	})
}

// TestRetentionPolicy: with whenScaled: Delete the claims of a pod scaled
// away are handed to the pod, so the garbage collector deletes them after
// it; with whenDeleted: Delete the set owns every claim, so they go with it.
func TestRetentionPolicy(t *testing.T) {
	cl := startCluster(t)
	cl.startGC(t)
	ns := cl.namespace(t, "retention")
	set := newSet(2, "nginx:1", true)
	set.Spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{
		WhenDeleted: appsv1.DeletePersistentVolumeClaimRetentionPolicyType,
		WhenScaled:  appsv1.DeletePersistentVolumeClaimRetentionPolicyType,
	}
	set = cl.createSet(t, ns, set)
	waitRolledOut(t, cl, ns, 2)
	claim, err := cl.client.CoreV1().PersistentVolumeClaims(ns).Get(t.Context(), "www-web-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !hasOwner(claim.OwnerReferences, set.UID) || len(claim.OwnerReferences) != 1 {
		t.Errorf("claim of web-0: owners %+v, want the set", claim.OwnerReferences)
	}
	claimGone := func(name string) func(ctx context.Context) (bool, error) {
		return func(ctx context.Context) (bool, error) {
			_, err := cl.client.CoreV1().PersistentVolumeClaims(ns).Get(ctx, name, metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		}
	}
	cl.patchSet(t, ns, "web", map[string]any{"spec": map[string]any{"replicas": 1}})
	testenv.Eventually(t, "the claim of the scaled-away web-1 is deleted", claimGone("www-web-1"))
	if _, err := cl.client.CoreV1().PersistentVolumeClaims(ns).Get(t.Context(), "www-web-0", metav1.GetOptions{}); err != nil {
		t.Errorf("claim of web-0: %v", err)
	}
	if err := cl.client.AppsV1().StatefulSets(ns).Delete(t.Context(), "web", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the claim of web-0 is deleted with the set", claimGone("www-web-0"))
}

func hasOwner(refs []metav1.OwnerReference, uid types.UID) bool {
	for _, r := range refs {
		if r.UID == uid {
			return true
		}
	}
	return false
}

// TestRestart: a controller stopped midway and started again finishes the
// job from what the API holds.
func TestRestart(t *testing.T) {
	cl := startCluster(t)
	ns := cl.namespace(t, "restart")
	cl.createSet(t, ns, newSet(3, "nginx:1", false))
	testenv.Eventually(t, "web-0 is created", func(ctx context.Context) (bool, error) {
		_, err := cl.pod(ctx, ns, "web-0")
		return err == nil, nil
	})
	cl.stop()
	cl.makeReady(t, ns, "web-0")
	cl.startController(t)
	for _, name := range []string{"web-1", "web-2"} {
		testenv.Eventually(t, name+" is created", func(ctx context.Context) (bool, error) {
			_, err := cl.pod(ctx, ns, name)
			return err == nil, nil
		})
		cl.makeReady(t, ns, name)
	}
	waitRolledOut(t, cl, ns, 3)
}
