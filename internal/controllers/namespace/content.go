package namespace

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/metadata"

	"skiff.dev/skiff/internal/resources"
)

// namespacedResources picks, for every namespaced group/resource in all
// that can be listed and deleted, the entry served in its storage version
// (autoscaling/v2 for HPAs).
func namespacedResources(all []resources.Resource) []resources.Resource {
	var out []resources.Resource
	seen := map[schema.GroupResource]bool{}
	for _, r := range all {
		verbs := r.AllVerbs()
		gr := schema.GroupResource{Group: r.Group, Resource: r.Plural}
		if !r.Namespaced || seen[gr] || r.StorageGVK().Version != r.Version ||
			!slices.Contains(verbs, "list") || !slices.Contains(verbs, "delete") {
			continue
		}
		seen[gr] = true
		out = append(out, r)
	}
	return out
}

// remaining counts what is left in a namespace after a deletion pass.
type remaining struct {
	byResource  map[schema.GroupResource]int
	byFinalizer map[string]int
}

func (r remaining) empty() bool { return len(r.byResource) == 0 }

// deleteContent deletes every object in namespace ns that is not already
// being deleted, and reports what is left. It goes through all resources
// even when some fail and returns their errors joined.
func (c *Controller) deleteContent(ctx context.Context, ns string) (remaining, error) {
	left := remaining{byResource: map[schema.GroupResource]int{}, byFinalizer: map[string]int{}}
	var errs []error
	for _, r := range c.content {
		if err := c.deleteResource(ctx, r, ns, left); err != nil {
			errs = append(errs, err)
		}
	}
	return left, errors.Join(errs...)
}

// deleteResource deletes the objects of one resource in ns, cascading in
// the background, and adds what is left to left.
func (c *Controller) deleteResource(ctx context.Context, r resources.Resource, ns string, left remaining) error {
	client := c.meta.Resource(r.GVR()).Namespace(ns)
	list, err := client.List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("list %s: %w", r.Plural, err)
	}
	var live []string
	for _, m := range list.Items {
		if m.DeletionTimestamp == nil {
			live = append(live, m.Name)
		}
	}
	if len(live) > 0 {
		background := metav1.DeletePropagationBackground
		opts := metav1.DeleteOptions{PropagationPolicy: &background}
		if slices.Contains(r.AllVerbs(), "deletecollection") {
			err = client.DeleteCollection(ctx, opts, metav1.ListOptions{})
		} else {
			err = deleteEach(ctx, client, live, opts)
		}
		if err != nil {
			return fmt.Errorf("delete %s: %w", r.Plural, err)
		}
		if list, err = client.List(ctx, metav1.ListOptions{}); err != nil {
			return fmt.Errorf("list %s: %w", r.Plural, err)
		}
	}
	if n := len(list.Items); n > 0 {
		left.byResource[schema.GroupResource{Group: r.Group, Resource: r.Plural}] += n
		for _, m := range list.Items {
			for _, f := range m.Finalizers {
				left.byFinalizer[f]++
			}
		}
	}
	return nil
}

func deleteEach(ctx context.Context, client metadata.ResourceInterface, names []string, opts metav1.DeleteOptions) error {
	for _, name := range names {
		if err := client.Delete(ctx, name, opts); err != nil && !apierrors.IsNotFound(err) {
			return err
		}
	}
	return nil
}

// Condition reasons and messages, as upstream's namespace controller
// writes them.
var conditionTypes = []corev1.NamespaceConditionType{
	corev1.NamespaceDeletionDiscoveryFailure,
	corev1.NamespaceDeletionGVParsingFailure,
	corev1.NamespaceDeletionContentFailure,
	corev1.NamespaceContentRemaining,
	corev1.NamespaceFinalizersRemaining,
}

var okReasons = map[corev1.NamespaceConditionType][2]string{
	corev1.NamespaceDeletionDiscoveryFailure: {"ResourcesDiscovered", "All resources successfully discovered"},
	corev1.NamespaceDeletionGVParsingFailure: {"ParsedGroupVersions", "All legacy kube types successfully parsed"},
	corev1.NamespaceDeletionContentFailure:   {"ContentDeleted", "All content successfully deleted, may be waiting on finalization"},
	corev1.NamespaceContentRemaining:         {"ContentRemoved", "All content successfully removed"},
	corev1.NamespaceFinalizersRemaining:      {"ContentHasNoFinalizers", "All content-preserving finalizers finished"},
}

// conditions describes a deletion pass as the namespace's conditions.
func conditions(left remaining, delErr error) []corev1.NamespaceCondition {
	bad := map[corev1.NamespaceConditionType][2]string{}
	if delErr != nil {
		n := 1
		if j, ok := delErr.(interface{ Unwrap() []error }); ok {
			n = len(j.Unwrap())
		}
		bad[corev1.NamespaceDeletionContentFailure] = [2]string{"ContentDeletionFailed",
			fmt.Sprintf("Failed to delete all resource types, %d remaining: %s", n, strings.ReplaceAll(delErr.Error(), "\n", ", "))}
	}
	if len(left.byResource) > 0 {
		var parts []string
		for _, gr := range slices.SortedFunc(maps.Keys(left.byResource), func(a, b schema.GroupResource) int {
			return strings.Compare(a.String(), b.String())
		}) {
			parts = append(parts, fmt.Sprintf("%s has %d resource instances", gr, left.byResource[gr]))
		}
		bad[corev1.NamespaceContentRemaining] = [2]string{"SomeResourcesRemain", "Some resources are remaining: " + strings.Join(parts, ", ")}
	}
	if len(left.byFinalizer) > 0 {
		var parts []string
		for _, f := range slices.Sorted(maps.Keys(left.byFinalizer)) {
			parts = append(parts, fmt.Sprintf("%s in %d resource instances", f, left.byFinalizer[f]))
		}
		bad[corev1.NamespaceFinalizersRemaining] = [2]string{"SomeFinalizersRemain", "Some content in the namespace has finalizers remaining: " + strings.Join(parts, ", ")}
	}
	out := make([]corev1.NamespaceCondition, 0, len(conditionTypes))
	for _, t := range conditionTypes {
		c := corev1.NamespaceCondition{Type: t, Status: corev1.ConditionFalse, Reason: okReasons[t][0], Message: okReasons[t][1]}
		if b, ok := bad[t]; ok {
			c.Status, c.Reason, c.Message = corev1.ConditionTrue, b[0], b[1]
		}
		out = append(out, c)
	}
	return out
}

// setConditions merges want into status, keeping the transition time of
// conditions whose status stays, and reports whether anything changed.
func setConditions(status *corev1.NamespaceStatus, want []corev1.NamespaceCondition, now metav1.Time) bool {
	changed := false
	for _, w := range want {
		i := slices.IndexFunc(status.Conditions, func(c corev1.NamespaceCondition) bool { return c.Type == w.Type })
		if i < 0 {
			w.LastTransitionTime = now
			status.Conditions = append(status.Conditions, w)
			changed = true
			continue
		}
		cur := &status.Conditions[i]
		if cur.Status == w.Status && cur.Reason == w.Reason && cur.Message == w.Message {
			continue
		}
		w.LastTransitionTime = cur.LastTransitionTime
		if cur.Status != w.Status {
			w.LastTransitionTime = now
		}
		*cur = w
		changed = true
	}
	return changed
}
