package deployment

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	"skiff.dev/skiff/internal/controllers/podcontrol"
)

// syncer is one sync of one Deployment: d is the working copy, and the
// ReplicaSets found for it are kept so that one sync looks them up once.
type syncer struct {
	*Controller
	key      string
	d        *appsv1.Deployment
	selector labels.Selector
	sets     []*appsv1.ReplicaSet // claimed
	newRS    *appsv1.ReplicaSet
	oldRSs   []*appsv1.ReplicaSet
	found    bool
}

// sync reconciles one Deployment, as upstream's syncDeployment.
func (c *Controller) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return nil
	}
	if c.fresh.behind(key) {
		return errCacheBehind
	}
	d, err := c.dLister.Deployments(ns).Get(name)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	// A started sync finishes its requests even if ctx ends: a request
	// abandoned half-way may still land after a successor has looked.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	s := &syncer{Controller: c, key: key, d: d.DeepCopy()}
	return s.run(wctx)
}

func (s *syncer) run(ctx context.Context) error {
	d := s.d
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || sel.Empty() {
		s.recorder.Eventf(d, corev1.EventTypeWarning, "SelectingAll", "This deployment is selecting all pods. A non-empty selector is required.")
		if d.Status.ObservedGeneration < d.Generation {
			d.Status.ObservedGeneration = d.Generation
			return s.writeStatus(ctx)
		}
		return nil
	}
	s.selector = sel
	if s.sets, err = s.claimReplicaSets(ctx); err != nil {
		return err
	}
	if d.DeletionTimestamp != nil {
		newRS, oldRSs, err := s.replicaSets(ctx, false)
		if err != nil {
			return err
		}
		return s.syncStatus(ctx, withNew(oldRSs, newRS), newRS)
	}
	if err := s.checkPausedConditions(ctx); err != nil {
		return err
	}
	if d.Spec.Paused {
		return s.scaleOnly(ctx)
	}
	scaling, err := s.isScalingEvent(ctx)
	if err != nil {
		return err
	}
	if scaling {
		return s.scaleOnly(ctx)
	}
	switch d.Spec.Strategy.Type {
	case appsv1.RecreateDeploymentStrategyType:
		return s.rolloutRecreate(ctx)
	case appsv1.RollingUpdateDeploymentStrategyType:
		return s.rolloutRolling(ctx)
	}
	return fmt.Errorf("deployment %s: unknown strategy %q", s.key, d.Spec.Strategy.Type)
}

// claimReplicaSets returns the ReplicaSets the Deployment controls,
// adopting orphans its selector matches and releasing those it stopped
// matching.
func (s *syncer) claimReplicaSets(ctx context.Context) ([]*appsv1.ReplicaSet, error) {
	d := s.d
	all, err := s.rsLister.ReplicaSets(d.Namespace).List(labels.Everything())
	if err != nil {
		return nil, err
	}
	api := s.client.AppsV1().ReplicaSets(d.Namespace)
	m := &podcontrol.RefManager{
		Owner:    d,
		Kind:     kind,
		Selector: s.selector,
		CanAdopt: podcontrol.RecheckDeletion(d, func(ctx context.Context) (metav1.Object, error) {
			return s.client.AppsV1().Deployments(d.Namespace).Get(ctx, d.Name, metav1.GetOptions{})
		}),
	}
	return podcontrol.Claim(ctx, m, all, func(ctx context.Context, name string, patch []byte) error {
		rs, err := api.Patch(ctx, name, types.StrategicMergePatchType, patch, metav1.PatchOptions{})
		if err == nil {
			s.fresh.record(s.key, rs)
		}
		return err
	})
}

// replicaSets returns the new ReplicaSet (the one with the Deployment's
// template; created when create is set and there is none) and the old
// ones, with the new one's annotations and revision brought up to date.
func (s *syncer) replicaSets(ctx context.Context, create bool) (*appsv1.ReplicaSet, []*appsv1.ReplicaSet, error) {
	if !s.found {
		existing := findNewReplicaSet(s.d, s.sets)
		for _, rs := range s.sets {
			if existing == nil || rs.UID != existing.UID {
				s.oldRSs = append(s.oldRSs, rs)
			}
		}
		rs, err := s.syncNewReplicaSet(ctx, existing)
		if err != nil {
			return nil, nil, err
		}
		s.newRS, s.found = rs, true
	}
	if s.newRS == nil && create {
		rs, err := s.createNewReplicaSet(ctx)
		if err != nil {
			return nil, nil, err
		}
		s.newRS = rs
	}
	return s.newRS, s.oldRSs, nil
}

// findNewReplicaSet returns the oldest ReplicaSet with d's template.
func findNewReplicaSet(d *appsv1.Deployment, sets []*appsv1.ReplicaSet) *appsv1.ReplicaSet {
	sorted := slices.Clone(sets)
	byCreation(sorted)
	for _, rs := range sorted {
		if equalIgnoreHash(&rs.Spec.Template, &d.Spec.Template) {
			return rs
		}
	}
	return nil
}

// equalIgnoreHash compares pod templates, pod-template-hash label aside.
func equalIgnoreHash(a, b *corev1.PodTemplateSpec) bool {
	a, b = a.DeepCopy(), b.DeepCopy()
	delete(a.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	delete(b.Labels, appsv1.DefaultDeploymentUniqueLabelKey)
	return equality.Semantic.DeepEqual(a, b)
}

// syncNewReplicaSet brings an existing new ReplicaSet's annotations,
// revision and minReadySeconds up to date (a rollback to it gives it the
// next revision), and the Deployment's revision with it.
func (s *syncer) syncNewReplicaSet(ctx context.Context, existing *appsv1.ReplicaSet) (*appsv1.ReplicaSet, error) {
	if existing == nil {
		return nil, nil
	}
	d := s.d
	rs := existing.DeepCopy()
	changed := setNewReplicaSetAnnotations(d, rs, maxRevision(s.oldRSs)+1, false)
	if changed || rs.Spec.MinReadySeconds != d.Spec.MinReadySeconds {
		rs.Spec.MinReadySeconds = d.Spec.MinReadySeconds
		return s.updateReplicaSet(ctx, rs)
	}
	if err := s.setRevision(ctx, rs.Annotations[annRevision]); err != nil {
		return nil, err
	}
	if hasProgressDeadline(d) && getCondition(&d.Status, appsv1.DeploymentProgressing) == nil {
		setCondition(&d.Status, s.condition(appsv1.DeploymentProgressing, corev1.ConditionTrue,
			reasonFoundNewRS, fmt.Sprintf("Found new replica set %q", rs.Name)))
		if err := s.writeStatus(ctx); err != nil {
			return nil, err
		}
	}
	return rs, nil
}

// createNewReplicaSet creates the ReplicaSet for d's template, named
// after its hash and sized as far as the strategy allows now.
func (s *syncer) createNewReplicaSet(ctx context.Context) (*appsv1.ReplicaSet, error) {
	d := s.d
	template := d.Spec.Template.DeepCopy()
	hash := podTemplateHash(template, d.Status.CollisionCount)
	template.Labels = maps.Clone(template.Labels)
	if template.Labels == nil {
		template.Labels = map[string]string{}
	}
	template.Labels[appsv1.DefaultDeploymentUniqueLabelKey] = hash
	selector := d.Spec.Selector.DeepCopy()
	if selector.MatchLabels == nil {
		selector.MatchLabels = map[string]string{}
	}
	selector.MatchLabels[appsv1.DefaultDeploymentUniqueLabelKey] = hash
	zero := int32(0)
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Name:            d.Name + "-" + hash,
			Namespace:       d.Namespace,
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(d, kind)},
			Labels:          maps.Clone(template.Labels),
		},
		Spec: appsv1.ReplicaSetSpec{
			Replicas:        &zero,
			MinReadySeconds: d.Spec.MinReadySeconds,
			Selector:        selector,
			Template:        *template,
		},
	}
	n := newReplicaSetReplicas(d, withNew(s.oldRSs, rs), rs)
	rs.Spec.Replicas = &n
	newRevision := maxRevision(s.oldRSs) + 1
	setNewReplicaSetAnnotations(d, rs, newRevision, true)

	created, err := s.client.AppsV1().ReplicaSets(d.Namespace).Create(ctx, rs, metav1.CreateOptions{})
	existed := false
	switch {
	case apierrors.IsAlreadyExists(err):
		// Ours from an earlier sync the cache has not shown yet, or a
		// hash collision with another template.
		cur, getErr := s.client.AppsV1().ReplicaSets(d.Namespace).Get(ctx, rs.Name, metav1.GetOptions{})
		if getErr != nil {
			return nil, getErr
		}
		if ref := metav1.GetControllerOfNoCopy(cur); ref != nil && ref.UID == d.UID && equalIgnoreHash(&d.Spec.Template, &cur.Spec.Template) {
			created, existed = cur, true
			break
		}
		count := ptrValue(d.Status.CollisionCount) + 1
		d.Status.CollisionCount = &count
		s.log.Info("pod template hash collision", "deployment", s.key, "collisionCount", count)
		if err := s.writeStatus(ctx); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("replicaset %s exists with another template (collision count now %d)", rs.Name, count)
	case apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause):
		return nil, err
	case err != nil:
		msg := fmt.Sprintf("Failed to create new replica set %q: %v", rs.Name, err)
		if hasProgressDeadline(d) {
			setCondition(&d.Status, s.condition(appsv1.DeploymentProgressing, corev1.ConditionFalse, reasonFailedRSCreate, msg))
			_ = s.writeStatus(ctx) // the create error is the one to report
		}
		s.recorder.Event(d, corev1.EventTypeWarning, reasonFailedRSCreate, msg)
		return nil, err
	}
	s.fresh.record(s.key, created)
	if !existed && n > 0 {
		s.recorder.Eventf(d, corev1.EventTypeNormal, "ScalingReplicaSet", "Scaled up replica set %s from 0 to %d", created.Name, n)
	}
	if err := s.setRevision(ctx, strconv.FormatInt(newRevision, 10)); err != nil {
		return nil, err
	}
	if !existed && hasProgressDeadline(d) {
		setCondition(&d.Status, s.condition(appsv1.DeploymentProgressing, corev1.ConditionTrue,
			reasonNewRSCreated, fmt.Sprintf("Created new replica set %q", created.Name)))
		if err := s.writeStatus(ctx); err != nil {
			return nil, err
		}
	}
	return created, nil
}

// setRevision puts rev into the Deployment's revision annotation.
// Upstream writes it with the status (its status subresource keeps
// metadata changes); where the status subresource keeps metadata as
// stored, as Skiff's does today, it is patched onto the Deployment itself.
func (s *syncer) setRevision(ctx context.Context, rev string) error {
	d := s.d
	if rev == "" || d.Annotations[annRevision] == rev {
		return nil
	}
	if d.Annotations == nil {
		d.Annotations = map[string]string{}
	}
	d.Annotations[annRevision] = rev
	got, err := s.client.AppsV1().Deployments(d.Namespace).UpdateStatus(ctx, d, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("set revision of deployment %s: %w", s.key, err)
	}
	d.ResourceVersion = got.ResourceVersion
	if got.Annotations[annRevision] == rev {
		return nil
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{annRevision: rev}}})
	if err != nil {
		return err
	}
	got, err = s.client.AppsV1().Deployments(d.Namespace).Patch(ctx, d.Name, types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		return fmt.Errorf("set revision of deployment %s: %w", s.key, err)
	}
	if got.Generation == d.Generation {
		// Nothing but metadata changed meanwhile: carry on from here.
		d.ResourceVersion = got.ResourceVersion
	}
	return nil
}

// isScalingEvent reports whether replicas changed since the active
// ReplicaSets were last sized (their desired-replicas annotation).
func (s *syncer) isScalingEvent(ctx context.Context) (bool, error) {
	newRS, oldRSs, err := s.replicaSets(ctx, false)
	if err != nil {
		return false, err
	}
	for _, rs := range activeSets(withNew(oldRSs, newRS)) {
		if desired, ok := intAnnotation(rs, annDesiredReplicas); ok && desired != replicas(s.d) {
			return true, nil
		}
	}
	return false, nil
}

// writeStatus writes the working copy's status.
func (s *syncer) writeStatus(ctx context.Context) error {
	got, err := s.client.AppsV1().Deployments(s.d.Namespace).UpdateStatus(ctx, s.d, metav1.UpdateOptions{})
	if err != nil {
		return fmt.Errorf("update status of deployment %s: %w", s.key, err)
	}
	s.d.ResourceVersion = got.ResourceVersion
	return nil
}

// withNew is oldRSs plus newRS when there is one.
func withNew(oldRSs []*appsv1.ReplicaSet, newRS *appsv1.ReplicaSet) []*appsv1.ReplicaSet {
	all := slices.Clone(oldRSs)
	if newRS != nil {
		all = append(all, newRS)
	}
	return all
}
