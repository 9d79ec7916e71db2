package hpa

import (
	"context"
	"fmt"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes"
)

// scaler reads and writes the scale subresource of an HPA's target.
type scaler interface {
	getScale(ctx context.Context, namespace string, ref autoscalingv2.CrossVersionObjectReference) (*autoscalingv1.Scale, error)
	updateScale(ctx context.Context, namespace string, ref autoscalingv2.CrossVersionObjectReference, scale *autoscalingv1.Scale) error
}

// typedScales reaches the scale subresource through the typed clients of
// the workloads Skiff serves (upstream discovers any resource with a scale
// subresource through a REST mapper; custom resources are not served yet).
type typedScales struct{ client kubernetes.Interface }

type scaleClient interface {
	GetScale(ctx context.Context, name string, opts metav1.GetOptions) (*autoscalingv1.Scale, error)
	UpdateScale(ctx context.Context, name string, scale *autoscalingv1.Scale, opts metav1.UpdateOptions) (*autoscalingv1.Scale, error)
}

func (s typedScales) clientFor(namespace string, ref autoscalingv2.CrossVersionObjectReference) (scaleClient, error) {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return nil, fmt.Errorf("invalid API version in scale target reference: %w", err)
	}
	if gv.Group == "apps" || gv.Group == "extensions" {
		switch ref.Kind {
		case "Deployment":
			return s.client.AppsV1().Deployments(namespace), nil
		case "ReplicaSet":
			return s.client.AppsV1().ReplicaSets(namespace), nil
		case "StatefulSet":
			return s.client.AppsV1().StatefulSets(namespace), nil
		}
	}
	return nil, fmt.Errorf("unable to scale %s in %s: Skiff scales Deployments, ReplicaSets and StatefulSets", ref.Kind, ref.APIVersion)
}

func (s typedScales) getScale(ctx context.Context, namespace string, ref autoscalingv2.CrossVersionObjectReference) (*autoscalingv1.Scale, error) {
	c, err := s.clientFor(namespace, ref)
	if err != nil {
		return nil, err
	}
	return c.GetScale(ctx, ref.Name, metav1.GetOptions{})
}

func (s typedScales) updateScale(ctx context.Context, namespace string, ref autoscalingv2.CrossVersionObjectReference, scale *autoscalingv1.Scale) error {
	c, err := s.clientFor(namespace, ref)
	if err != nil {
		return err
	}
	_, err = c.UpdateScale(ctx, ref.Name, scale, metav1.UpdateOptions{})
	return err
}
