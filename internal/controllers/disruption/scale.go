package disruption

import (
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"

	"skiff.dev/skiff/internal/resources"
)

// findScale returns the scale of the controller ref names: a Deployment
// (through the ReplicaSet it controls), a ReplicaSet of its own, or a
// StatefulSet, read from the caches; any other kind has no scale Skiff
// serves, which is an error, as upstream's scale lookup reports it.
func (c *Controller) findScale(ref *metav1.OwnerReference, ns string) (types.UID, int32, bool, error) {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return "", 0, false, err
	}
	switch {
	case ref.Kind == "ReplicaSet" && (gv.Group == "apps" || gv.Group == "extensions"):
		rs, err := c.rsLister.ReplicaSets(ns).Get(ref.Name)
		if apierrors.IsNotFound(err) || err == nil && rs.UID != ref.UID {
			return "", 0, false, nil
		}
		if err != nil {
			return "", 0, false, err
		}
		owner := metav1.GetControllerOfNoCopy(rs)
		if owner == nil || owner.Kind != "Deployment" {
			return rs.UID, replicas(rs.Spec.Replicas), true, nil
		}
		d, err := c.dLister.Deployments(ns).Get(owner.Name)
		if apierrors.IsNotFound(err) || err == nil && d.UID != owner.UID {
			return "", 0, false, nil
		}
		if err != nil {
			return "", 0, false, err
		}
		return d.UID, replicas(d.Spec.Replicas), true, nil
	case ref.Kind == "StatefulSet" && gv.Group == "apps":
		ss, err := c.ssLister.StatefulSets(ns).Get(ref.Name)
		if apierrors.IsNotFound(err) || err == nil && ss.UID != ref.UID {
			return "", 0, false, nil
		}
		if err != nil {
			return "", 0, false, err
		}
		return ss.UID, replicas(ss.Spec.Replicas), true, nil
	}
	for _, r := range resources.All {
		if r.Group == gv.Group && r.Kind == ref.Kind {
			if !r.Scale {
				return "", 0, false, fmt.Errorf("%s does not implement the scale subresource", schema.GroupResource{Group: r.Group, Resource: r.Plural})
			}
			return "", 0, false, nil
		}
	}
	return "", 0, false, fmt.Errorf("no matches for kind %q in version %q", ref.Kind, ref.APIVersion)
}

// replicas is spec.replicas, 1 when unset (as defaulting makes it).
func replicas(r *int32) int32 {
	if r == nil {
		return 1
	}
	return *r
}
