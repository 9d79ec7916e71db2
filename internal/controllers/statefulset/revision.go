package statefulset

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
)

// CurrentRevisionAnnotation holds, on a StatefulSet, the revision its
// status.currentRevision names, as JSON {"name": ..., "template": {...}}:
// the pod template that pods below a RollingUpdate partition are
// (re)created from while an update is under way. Upstream keeps revisions
// in apps/v1 ControllerRevisions, which Skiff's API server does not serve
// yet. The controller writes the annotation when it first sees a
// StatefulSet and each time a rolling update completes; without it the
// current revision is taken to be the update revision (the spec's
// template), as upstream does when it has no history.
const CurrentRevisionAnnotation = "statefulset.skiff.dev/current-revision"

// revision is one version of a StatefulSet's pod template. Its name,
// <set>-<hash of the template>, is what pods carry in their
// controller-revision-hash label and status.currentRevision and
// status.updateRevision name.
type revision struct {
	Name     string                 `json:"name"`
	Template corev1.PodTemplateSpec `json:"template"`
}

// templateRevision is the revision of the set's current spec.
func templateRevision(set *appsv1.StatefulSet) (*revision, error) {
	raw, err := json.Marshal(&set.Spec.Template)
	if err != nil {
		return nil, fmt.Errorf("hash pod template: %w", err)
	}
	h := fnv.New32a()
	h.Write(raw)
	return &revision{Name: set.Name + "-" + rand.SafeEncodeString(fmt.Sprint(h.Sum32())), Template: set.Spec.Template}, nil
}

// revisions returns the set's current revision (from its annotation) and
// its update revision (from its spec).
func revisions(set *appsv1.StatefulSet) (current, update *revision, err error) {
	if update, err = templateRevision(set); err != nil {
		return nil, nil, err
	}
	current = update
	if raw, ok := set.Annotations[CurrentRevisionAnnotation]; ok {
		var rev revision
		if err := json.Unmarshal([]byte(raw), &rev); err == nil && rev.Name != "" && rev.Name != update.Name {
			current = &rev
		}
	}
	return current, update, nil
}

// recordedRevision is the name of the revision in the set's annotation.
func recordedRevision(set *appsv1.StatefulSet) string {
	var rev struct {
		Name string `json:"name"`
	}
	if json.Unmarshal([]byte(set.Annotations[CurrentRevisionAnnotation]), &rev) != nil {
		return ""
	}
	return rev.Name
}

// recordRevision writes the revision status.currentRevision will name to
// the set's annotation before the status says so, so a crash between the
// two leaves the annotation ahead, never behind. It returns the set as
// the server has it after the write.
func (c *Controller) recordRevision(ctx context.Context, set *appsv1.StatefulSet, status *appsv1.StatefulSetStatus, current, update *revision) (*appsv1.StatefulSet, error) {
	want := current
	if status.CurrentRevision == update.Name {
		want = update
	}
	if recordedRevision(set) == want.Name || set.DeletionTimestamp != nil {
		return set, nil
	}
	raw, err := json.Marshal(want)
	if err != nil {
		return nil, fmt.Errorf("record revision %s: %w", want.Name, err)
	}
	next := set.DeepCopy()
	if next.Annotations == nil {
		next.Annotations = map[string]string{}
	}
	next.Annotations[CurrentRevisionAnnotation] = string(raw)
	updated, err := c.client.AppsV1().StatefulSets(set.Namespace).Update(ctx, next, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("record revision %s of statefulset %s/%s: %w", want.Name, set.Namespace, set.Name, err)
	}
	return updated, nil
}
