package deployment

import (
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// Annotations the controller keeps on Deployments and their ReplicaSets,
// as upstream.
const (
	// annRevision numbers a ReplicaSet's turn as the new one (and the
	// Deployment's current revision). kubectl rollout history/undo read it.
	annRevision = "deployment.kubernetes.io/revision"
	// annRevisionHistory lists the earlier revisions a ReplicaSet served
	// as, when a rollback made it new again.
	annRevisionHistory = "deployment.kubernetes.io/revision-history"
	// annDesiredReplicas is the Deployment's replicas when it last scaled
	// the ReplicaSet; a mismatch marks a scaling event.
	annDesiredReplicas = "deployment.kubernetes.io/desired-replicas"
	// annMaxReplicas is replicas+maxSurge then, for proportional scaling.
	annMaxReplicas = "deployment.kubernetes.io/max-replicas"

	// maxRevisionHistoryChars bounds annRevisionHistory.
	maxRevisionHistoryChars = 2000
)

// notCopied are the Deployment annotations that stay off its ReplicaSets.
var notCopied = map[string]bool{
	corev1.LastAppliedConfigAnnotation: true,
	annRevision:                        true,
	annRevisionHistory:                 true,
	annDesiredReplicas:                 true,
	annMaxReplicas:                     true,
	"deployment.kubernetes.io/error-selector-overlapping-with": true,
	"deployment.kubernetes.io/selector-updated-at":             true,
}

// revision reads an object's revision annotation (0 when absent or bad).
func revision(annotations map[string]string) int64 {
	n, err := strconv.ParseInt(annotations[annRevision], 10, 64)
	if err != nil {
		return 0
	}
	return n
}

func maxRevision(sets []*appsv1.ReplicaSet) int64 {
	var m int64
	for _, rs := range sets {
		m = max(m, revision(rs.Annotations))
	}
	return m
}

// setNewReplicaSetAnnotations brings the new ReplicaSet's annotations up
// to date: the Deployment's own (kubernetes.io/change-cause among them),
// and the revision newRevision unless it already has a later one. A
// ReplicaSet that had a revision before (a rollback back to it) keeps the
// old number in its revision history. A ReplicaSet about to be created
// also gets the replica annotations. It reports whether anything changed.
func setNewReplicaSetAnnotations(d *appsv1.Deployment, rs *appsv1.ReplicaSet, newRevision int64, creating bool) bool {
	if rs.Annotations == nil {
		rs.Annotations = map[string]string{}
	}
	changed := false
	for k, v := range d.Annotations {
		if notCopied[k] || rs.Annotations[k] == v {
			continue
		}
		rs.Annotations[k] = v
		changed = true
	}
	oldText, had := rs.Annotations[annRevision]
	old, err := strconv.ParseInt(oldText, 10, 64)
	if err != nil && had && oldText != "" {
		return changed // not ours to fix
	}
	if old < newRevision {
		rs.Annotations[annRevision] = strconv.FormatInt(newRevision, 10)
		changed = true
		if had && oldText != "" {
			rs.Annotations[annRevisionHistory] = appendHistory(rs.Annotations[annRevisionHistory], oldText)
		}
	}
	if creating && setReplicasAnnotations(rs, replicas(d), replicas(d)+maxSurge(d)) {
		changed = true
	}
	return changed
}

// appendHistory adds rev to a comma-separated history, dropping the
// oldest entries beyond maxRevisionHistoryChars.
func appendHistory(history, rev string) string {
	var revs []string
	if history != "" {
		revs = strings.Split(history, ",")
	}
	revs = append(revs, rev)
	for len(revs) > 1 && len(strings.Join(revs, ",")) > maxRevisionHistoryChars {
		revs = revs[1:]
	}
	return strings.Join(revs, ",")
}

// setReplicasAnnotations records the Deployment's size on rs; it reports
// whether anything changed.
func setReplicasAnnotations(rs *appsv1.ReplicaSet, desired, maxReplicas int32) bool {
	if rs.Annotations == nil {
		rs.Annotations = map[string]string{}
	}
	changed := false
	for k, v := range map[string]string{
		annDesiredReplicas: strconv.Itoa(int(desired)),
		annMaxReplicas:     strconv.Itoa(int(maxReplicas)),
	} {
		if rs.Annotations[k] != v {
			rs.Annotations[k] = v
			changed = true
		}
	}
	return changed
}

func replicasAnnotationsStale(rs *appsv1.ReplicaSet, desired, maxReplicas int32) bool {
	return rs.Annotations[annDesiredReplicas] != strconv.Itoa(int(desired)) ||
		rs.Annotations[annMaxReplicas] != strconv.Itoa(int(maxReplicas))
}
