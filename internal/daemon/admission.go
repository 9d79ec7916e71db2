package daemon

import (
	"fmt"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"skiff.dev/skiff/internal/apis/autoscaling"
	"skiff.dev/skiff/internal/apis/defaults"
	"skiff.dev/skiff/internal/apis/validation"
	"skiff.dev/skiff/internal/apiserver"
)

// admission is the built-in chain: upstream's defaults, then validation
// (Istio's kinds' too).
var admission = withIstio(apiserver.Admission{
	Default:        defaults.Default,
	ValidateCreate: validation.ValidateCreate,
	ValidateUpdate: validation.ValidateUpdate,
})

// conversions serve older versions of kinds stored in a newer one.
var conversions = map[schema.GroupVersionKind]apiserver.Conversion{
	autoscalingv1.SchemeGroupVersion.WithKind("HorizontalPodAutoscaler"): {
		ToServed: func(o runtime.Object) (runtime.Object, error) {
			in, ok := o.(*autoscalingv2.HorizontalPodAutoscaler)
			if !ok {
				return nil, fmt.Errorf("convert %T to autoscaling/v1", o)
			}
			return autoscaling.V2ToV1(in), nil
		},
		ToStored: func(o runtime.Object) (runtime.Object, error) {
			in, ok := o.(*autoscalingv1.HorizontalPodAutoscaler)
			if !ok {
				return nil, fmt.Errorf("convert %T to autoscaling/v2", o)
			}
			return autoscaling.V1ToV2(in), nil
		},
	},
}
