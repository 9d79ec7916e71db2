package deployment_test

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"skiff.dev/skiff/internal/testenv"
)

const webV1 = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  annotations:
    kubernetes.io/change-cause: create v1
spec:
  replicas: 3
  selector:
    matchLabels: {app: web}
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 1, maxUnavailable: 1}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: app
        image: img:v1
`

// TestKubectlRollout drives a Deployment with the real kubectl: apply,
// set image, rollout status/history/undo/restart, scale; and checks on
// every pod change during the rollouts that no more than replicas+maxSurge
// pods exist and no fewer than replicas-maxUnavailable are ready.
func TestKubectlRollout(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the skiff binary")
	}
	testenv.Binary(t)
	k := newCluster(t, nil)
	k.startControllers()
	ns := k.namespace("rollout")
	pods := k.watchPods(ns)

	apply(t, k, ns, webV1)
	k.mustKubectl(ns, "rollout", "status", "deployment/web", "--timeout=60s")
	v1RS := replicaSetOf(t, k, ns, "img:v1")

	pods.arm(rollingBounds(2, 4))
	k.mustKubectl(ns, "set", "image", "deployment/web", "app=img:v2")
	k.mustKubectl(ns, "annotate", "deployment/web", "kubernetes.io/change-cause=update to v2", "--overwrite")
	if out := k.mustKubectl(ns, "rollout", "status", "deployment/web", "--timeout=60s"); !strings.Contains(out, "successfully rolled out") {
		t.Errorf("rollout status: %s", out)
	}
	pods.disarm()
	if images := k.activePods(ns); len(images) != 3 || slices.ContainsFunc(images, notEq("img:v2")) {
		t.Errorf("after the rollout pods run %v, want 3 of img:v2", images)
	}

	hist := k.mustKubectl(ns, "rollout", "history", "deployment/web")
	for _, want := range []string{`(?m)^1\s+create v1\s*$`, `(?m)^2\s+update to v2\s*$`} {
		if !regexp.MustCompile(want).MatchString(hist) {
			t.Errorf("rollout history lacks %s:\n%s", want, hist)
		}
	}

	pods.arm(rollingBounds(2, 4))
	k.mustKubectl(ns, "rollout", "undo", "deployment/web", "--to-revision=1")
	k.mustKubectl(ns, "rollout", "status", "deployment/web", "--timeout=60s")
	pods.disarm()
	k.waitComplete(ns, "web")
	if images := k.activePods(ns); len(images) != 3 || slices.ContainsFunc(images, notEq("img:v1")) {
		t.Errorf("after undo pods run %v, want 3 of img:v1", images)
	}
	back := replicaSetOf(t, k, ns, "img:v1")
	if back.UID != v1RS.UID {
		t.Errorf("undo made a new ReplicaSet %s instead of reusing %s", back.Name, v1RS.Name)
	}
	if r, h := back.Annotations["deployment.kubernetes.io/revision"], back.Annotations["deployment.kubernetes.io/revision-history"]; r != "3" || h != "1" {
		t.Errorf("rolled-back ReplicaSet: revision %q history %q, want 3 and 1", r, h)
	}
	d, err := k.c.AppsV1().Deployments(ns).Get(t.Context(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r := d.Annotations["deployment.kubernetes.io/revision"]; r != "3" {
		t.Errorf("deployment revision %q, want 3", r)
	}
	hist = k.mustKubectl(ns, "rollout", "history", "deployment/web")
	for _, want := range []string{`(?m)^2\s+update to v2\s*$`, `(?m)^3\s+create v1\s*$`} {
		if !regexp.MustCompile(want).MatchString(hist) {
			t.Errorf("rollout history after undo lacks %s:\n%s", want, hist)
		}
	}

	t.Run("restart", func(t *testing.T) {
		k.mustKubectl(ns, "rollout", "restart", "deployment/web")
		k.mustKubectl(ns, "rollout", "status", "deployment/web", "--timeout=60s")
		restarted := replicaSetOf(t, k, ns, "img:v1")
		if restarted.UID == v1RS.UID || restarted.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] == "" {
			t.Errorf("restart did not roll out a new ReplicaSet with restartedAt: %s %v", restarted.Name, restarted.Spec.Template.Annotations)
		}
		if r := restarted.Annotations["deployment.kubernetes.io/revision"]; r != "4" {
			t.Errorf("restarted ReplicaSet revision %q, want 4", r)
		}
	})

	t.Run("scale", func(t *testing.T) {
		k.mustKubectl(ns, "scale", "deployment/web", "--replicas=6")
		k.mustKubectl(ns, "rollout", "status", "deployment/web", "--timeout=60s")
		d := k.waitComplete(ns, "web")
		if d.Status.ReadyReplicas != 6 || len(k.activePods(ns)) != 6 {
			t.Errorf("after scale: status %+v, %d pods", d.Status, len(k.activePods(ns)))
		}
	})

	t.Run("describe", func(t *testing.T) {
		out := k.mustKubectl(ns, "describe", "deployment", "web")
		for _, want := range []string{"ScalingReplicaSet", "NewReplicaSetAvailable", "MinimumReplicasAvailable", "6 desired | 6 updated | 6 total | 6 available | 0 unavailable"} {
			if !strings.Contains(out, want) {
				t.Errorf("kubectl describe deployment lacks %q:\n%s", want, out)
			}
		}
	})
}

// TestKubectlPauseResume checks that a paused Deployment takes template
// changes without rolling them out (but still scales), and rolls out on
// resume.
func TestKubectlPauseResume(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the skiff binary")
	}
	testenv.Binary(t)
	k := newCluster(t, nil)
	k.startControllers()
	ns := k.namespace("pause")
	apply(t, k, ns, webV1)
	k.mustKubectl(ns, "rollout", "status", "deployment/web", "--timeout=60s")

	k.mustKubectl(ns, "rollout", "pause", "deployment/web")
	k.mustKubectl(ns, "set", "image", "deployment/web", "app=img:v2")
	k.mustKubectl(ns, "scale", "deployment/web", "--replicas=4")
	k.eventually("the paused deployment scaled, its change seen but not rolled out", func(ctx context.Context) (bool, error) {
		d, err := k.c.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		c := condition(d, appsv1.DeploymentProgressing)
		return d.Status.ObservedGeneration == d.Generation && c != nil && c.Reason == "DeploymentPaused" &&
			c.Status == corev1.ConditionUnknown && d.Status.ReadyReplicas == 4, nil
	})
	if sets := replicaSets(t, k, ns); len(sets) != 1 {
		t.Errorf("paused deployment has %d ReplicaSets, want 1", len(sets))
	}
	if images := k.activePods(ns); len(images) != 4 || slices.ContainsFunc(images, notEq("img:v1")) {
		t.Errorf("paused deployment runs %v, want 4 of img:v1", images)
	}

	k.mustKubectl(ns, "rollout", "resume", "deployment/web")
	k.mustKubectl(ns, "rollout", "status", "deployment/web", "--timeout=60s")
	if images := k.activePods(ns); len(images) != 4 || slices.ContainsFunc(images, notEq("img:v2")) {
		t.Errorf("resumed deployment runs %v, want 4 of img:v2", images)
	}
}

// TestKubectlProgressDeadline rolls out pods that never become ready:
// the Deployment reports ProgressDeadlineExceeded and kubectl rollout
// status fails, while the old pods keep it available.
func TestKubectlProgressDeadline(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the skiff binary")
	}
	testenv.Binary(t)
	k := newCluster(t, func(p *corev1.Pod) testenv.PodOutcome {
		if p.Spec.Containers[0].Image == "img:broken" {
			return testenv.PodOutcome{Phase: corev1.PodRunning, Ready: false}
		}
		return testenv.Running()
	})
	k.startControllers()
	ns := k.namespace("deadline")
	apply(t, k, ns, strings.Replace(webV1, "spec:\n  replicas: 3", "spec:\n  progressDeadlineSeconds: 2\n  replicas: 3", 1))
	k.mustKubectl(ns, "rollout", "status", "deployment/web", "--timeout=60s")

	k.mustKubectl(ns, "set", "image", "deployment/web", "app=img:broken")
	out, err := k.kubectl(ns, "rollout", "status", "deployment/web", "--timeout=60s")
	if err == nil || !strings.Contains(out, "exceeded its progress deadline") {
		t.Errorf("rollout status of a stuck rollout: err %v, output:\n%s", err, out)
	}
	d, err := k.c.AppsV1().Deployments(ns).Get(t.Context(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if c := condition(d, appsv1.DeploymentProgressing); c == nil || c.Reason != "ProgressDeadlineExceeded" || c.Status != corev1.ConditionFalse {
		t.Errorf("Progressing condition %+v, want False/ProgressDeadlineExceeded", c)
	}
	if c := condition(d, appsv1.DeploymentAvailable); c == nil || c.Status != corev1.ConditionTrue || c.Reason != "MinimumReplicasAvailable" {
		t.Errorf("Available condition %+v, want True/MinimumReplicasAvailable", c)
	}
	if d.Status.AvailableReplicas != 2 || d.Status.UpdatedReplicas != 2 || d.Status.UnavailableReplicas != 2 {
		t.Errorf("status %+v: want 2 available (old), 2 updated (never ready), 2 unavailable", d.Status)
	}
}

func apply(t *testing.T, k *cluster, ns, manifest string) {
	t.Helper()
	f := t.TempDir() + "/manifest.yaml"
	if err := writeFile(f, manifest); err != nil {
		t.Fatal(err)
	}
	k.mustKubectl(ns, "apply", "-f", f)
}

func condition(d *appsv1.Deployment, ct appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range d.Status.Conditions {
		if d.Status.Conditions[i].Type == ct {
			return &d.Status.Conditions[i]
		}
	}
	return nil
}

func replicaSets(t *testing.T, k *cluster, ns string) []appsv1.ReplicaSet {
	t.Helper()
	list, err := k.c.AppsV1().ReplicaSets(ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return list.Items
}

// replicaSetOf returns the newest ReplicaSet running image.
func replicaSetOf(t *testing.T, k *cluster, ns, image string) appsv1.ReplicaSet {
	t.Helper()
	var found *appsv1.ReplicaSet
	for _, rs := range replicaSets(t, k, ns) {
		if rs.Spec.Template.Spec.Containers[0].Image == image && (found == nil || found.CreationTimestamp.Before(&rs.CreationTimestamp)) {
			found = &rs
		}
	}
	if found == nil {
		t.Fatalf("no ReplicaSet runs %s", image)
	}
	return *found
}

func notEq(want string) func(string) bool { return func(s string) bool { return s != want } }
