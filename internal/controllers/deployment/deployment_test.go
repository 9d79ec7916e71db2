package deployment_test

import (
	"context"
	"fmt"
	"maps"
	"os"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"skiff.dev/skiff/internal/testenv"
)

// TestRecreate checks that a Recreate rollout never has old and new pods
// at once, not even old ones on their way out.
func TestRecreate(t *testing.T) {
	k := newCluster(t, nil)
	k.startControllers()
	ns := k.namespace("recreate")
	d := newDeployment("web", "img:v1", 3, appsv1.DeploymentStrategy{Type: appsv1.RecreateDeploymentStrategyType})
	if _, err := k.c.AppsV1().Deployments(ns).Create(t.Context(), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	k.waitComplete(ns, "web")
	pods := k.watchPods(ns)
	pods.arm(func(pods []*corev1.Pod) string {
		images := map[string]int{}
		for _, p := range pods {
			images[p.Spec.Containers[0].Image]++
		}
		if len(images) > 1 {
			return fmt.Sprintf("old and new pods at once: %v", images)
		}
		return ""
	})
	k.setImage(ns, "web", "img:v2")
	k.waitComplete(ns, "web")
	pods.disarm()
	if images := k.activePods(ns); len(images) != 3 || slices.ContainsFunc(images, notEq("img:v2")) {
		t.Errorf("pods run %v, want 3 of img:v2", images)
	}
}

// TestRestartMidRollout stops the controllers in the middle of rollouts
// and starts new ones: each rollout completes, and no state of the store
// ever has more than replicas+maxSurge pods or fewer than
// replicas-maxUnavailable ready.
func TestRestartMidRollout(t *testing.T) {
	k := newCluster(t, readyAfter(150*time.Millisecond))
	stop := k.startControllers()
	ns := k.namespace("restart")
	d := newDeployment("web", "img:v1", 6, rollingUpdate(2, 1))
	if _, err := k.c.AppsV1().Deployments(ns).Create(t.Context(), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	k.waitComplete(ns, "web")
	pods := k.watchPods(ns)
	cases := []struct {
		name  string
		image string
		// stopWhen stops the controllers once the new ReplicaSet wants
		// this many replicas; they restart after pause.
		stopWhen []int32
		pause    time.Duration
	}{
		{name: "stopped at the first step", image: "img:v2", stopWhen: []int32{1}, pause: 300 * time.Millisecond},
		{name: "stopped twice", image: "img:v3", stopWhen: []int32{2, 5}, pause: 100 * time.Millisecond},
		{name: "restarted at once", image: "img:v4", stopWhen: []int32{1, 3, 4, 6}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pods.arm(rollingBounds(5, 8))
			k.setImage(ns, "web", tc.image)
			for _, n := range tc.stopWhen {
				k.eventually(fmt.Sprintf("the new ReplicaSet wants %d", n), func(ctx context.Context) (bool, error) {
					for _, rs := range replicaSets(t, k, ns) {
						if rs.Spec.Template.Spec.Containers[0].Image == tc.image && *rs.Spec.Replicas >= n {
							return true, nil
						}
					}
					return false, nil
				})
				stop()
				time.Sleep(tc.pause)
				stop = k.startControllers()
			}
			k.waitComplete(ns, "web")
			pods.disarm()
			if images := k.activePods(ns); len(images) != 6 || slices.ContainsFunc(images, notEq(tc.image)) {
				t.Errorf("pods run %v, want 6 of %s", images, tc.image)
			}
		})
	}
}

// TestRevisionHistoryLimit checks that old ReplicaSets beyond the limit
// are deleted once a rollout completes, oldest revision first.
func TestRevisionHistoryLimit(t *testing.T) {
	k := newCluster(t, readyAfter(0))
	k.startControllers()
	ns := k.namespace("history")
	d := newDeployment("web", "img:v1", 2, rollingUpdate(1, 0))
	limit := int32(1)
	d.Spec.RevisionHistoryLimit = &limit
	if _, err := k.c.AppsV1().Deployments(ns).Create(t.Context(), d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	k.waitComplete(ns, "web")
	for _, image := range []string{"img:v2", "img:v3"} {
		k.setImage(ns, "web", image)
		k.waitComplete(ns, "web")
	}
	k.eventually("one old ReplicaSet kept", func(ctx context.Context) (bool, error) {
		sets := replicaSets(t, k, ns)
		images := []string{}
		for _, rs := range sets {
			images = append(images, rs.Spec.Template.Spec.Containers[0].Image)
		}
		slices.Sort(images)
		return slices.Equal(images, []string{"img:v2", "img:v3"}), nil
	})
}

// TestProportionalScaling scales a Deployment whose rollout is stuck
// (new pods never ready): the extra replicas are shared between the old
// and the new ReplicaSet in proportion, the example of the Kubernetes
// documentation (10 replicas, maxSurge 3, maxUnavailable 2, stuck at 8
// old and 5 new; scaled to 15: 11 old, 7 new).
func TestProportionalScaling(t *testing.T) {
	k := newCluster(t, func(p *corev1.Pod) testenv.PodOutcome {
		if p.Spec.Containers[0].Image == "img:broken" {
			return testenv.PodOutcome{Phase: corev1.PodRunning, Ready: false}
		}
		return testenv.Running()
	})
	k.startControllers()
	ns := k.namespace("proportional")
	ctx := t.Context()
	if _, err := k.c.AppsV1().Deployments(ns).Create(ctx, newDeployment("web", "img:v1", 10, rollingUpdate(3, 2)), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	k.waitComplete(ns, "web")
	k.setImage(ns, "web", "img:broken")
	sizes := func(want map[string]int32) func(ctx context.Context) (bool, error) {
		return func(ctx context.Context) (bool, error) {
			got := map[string]int32{}
			for _, rs := range replicaSets(t, k, ns) {
				got[rs.Spec.Template.Spec.Containers[0].Image] = *rs.Spec.Replicas
			}
			return maps.Equal(got, want), nil
		}
	}
	k.eventually("the rollout stuck at 8 old, 5 new", sizes(map[string]int32{"img:v1": 8, "img:broken": 5}))
	patch := []byte(`{"spec":{"replicas":15}}`)
	if _, err := k.c.AppsV1().Deployments(ns).Patch(ctx, "web", types.MergePatchType, patch, metav1.PatchOptions{}, "scale"); err != nil {
		t.Fatal(err)
	}
	k.eventually("scaled in proportion: 11 old, 7 new", sizes(map[string]int32{"img:v1": 11, "img:broken": 7}))
}

// TestAdoptOrphans deletes a Deployment leaving its ReplicaSet and pods
// behind, then creates it again: the new Deployment adopts the
// ReplicaSet (same template) instead of making another, and the pods stay.
func TestAdoptOrphans(t *testing.T) {
	k := newCluster(t, readyAfter(0))
	k.startControllers()
	ns := k.namespace("adopt")
	ctx := t.Context()
	d := newDeployment("web", "img:v1", 2, rollingUpdate(1, 0))
	if _, err := k.c.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	k.waitComplete(ns, "web")
	before := replicaSets(t, k, ns)
	pods, err := k.c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	orphan := metav1.DeletePropagationOrphan
	if err := k.c.AppsV1().Deployments(ns).Delete(ctx, "web", metav1.DeleteOptions{PropagationPolicy: &orphan}); err != nil {
		t.Fatal(err)
	}
	k.eventually("the ReplicaSet orphaned", func(ctx context.Context) (bool, error) {
		sets := replicaSets(t, k, ns)
		_, err := k.c.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		return len(sets) == 1 && len(sets[0].OwnerReferences) == 0 && err != nil, nil
	})
	created, err := k.c.AppsV1().Deployments(ns).Create(ctx, newDeployment("web", "img:v1", 2, rollingUpdate(1, 0)), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	k.eventually("the ReplicaSet adopted", func(ctx context.Context) (bool, error) {
		sets := replicaSets(t, k, ns)
		return len(sets) == 1 && len(sets[0].OwnerReferences) == 1 && sets[0].OwnerReferences[0].UID == created.UID, nil
	})
	k.waitComplete(ns, "web")
	after := replicaSets(t, k, ns)
	if after[0].UID != before[0].UID {
		t.Errorf("a new ReplicaSet %s instead of adopting %s", after[0].Name, before[0].Name)
	}
	now, err := k.c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(now.Items) != 2 || !slices.ContainsFunc(now.Items, func(p corev1.Pod) bool { return p.UID == pods.Items[0].UID }) {
		t.Errorf("pods replaced across the adoption: before %d, now %d", len(pods.Items), len(now.Items))
	}
}

// BenchmarkDeployment100 measures a 100-replica Deployment going from
// created to all pods ready, with the FakeKubelet marking pods ready as
// soon as it sees them. The previous round's pods are gone before the
// next round starts.
func BenchmarkDeployment100(b *testing.B) {
	k := newCluster(b, readyAfter(0))
	k.startControllers()
	ns := k.namespace("bench")
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		name := fmt.Sprintf("web%d", i)
		d := newDeployment(name, "img:v1", 100, rollingUpdate(25, 25))
		if _, err := k.c.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		for {
			got, err := k.c.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				b.Fatal(err)
			}
			if got.Status.ReadyReplicas == 100 && got.Status.AvailableReplicas == 100 {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		b.StopTimer()
		if err := k.c.AppsV1().Deployments(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
			b.Fatal(err)
		}
		k.eventually("the pods collected", func(ctx context.Context) (bool, error) {
			pods, err := k.c.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
			return err == nil && len(pods.Items) == 0, err
		})
		b.StartTimer()
	}
}

func writeFile(path, content string) error { return os.WriteFile(path, []byte(content), 0o600) }
