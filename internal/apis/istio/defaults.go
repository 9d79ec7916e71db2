package istio

import (
	"google.golang.org/protobuf/types/known/wrapperspb"
	networking "istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Default maps the deprecated fields of an Istio object (stored form, v1)
// that configurations in the wild still use and Istio's Go types still
// carry to their replacements, at admission:
//
//   - VirtualService http[].fault.delay.percent (int) →
//     http[].fault.delay.percentage.value;
//   - DestinationRule outlierDetection.consecutiveErrors →
//     outlierDetection.consecutive5xxErrors (in trafficPolicy, its
//     portLevelSettings and every subset's).
//
// A replacement already set wins; the deprecated field is cleared either
// way. (fault.abort.percent, gone from the Go types, is mapped by
// PreDecode.) Objects of other types are left alone.
func Default(obj runtime.Object) {
	switch o := obj.(type) {
	case *networkingv1.VirtualService:
		for _, r := range o.Spec.Http {
			if d := r.GetFault().GetDelay(); d != nil && d.Percent != 0 { //nolint:staticcheck // mapping the deprecated field
				if d.Percentage == nil {
					d.Percentage = &networking.Percent{Value: float64(d.Percent)} //nolint:staticcheck
				}
				d.Percent = 0 //nolint:staticcheck
			}
		}
	case *networkingv1.DestinationRule:
		defaultTrafficPolicy(o.Spec.TrafficPolicy)
		for _, s := range o.Spec.Subsets {
			defaultTrafficPolicy(s.GetTrafficPolicy())
		}
	}
}

func defaultTrafficPolicy(tp *networking.TrafficPolicy) {
	if tp == nil {
		return
	}
	defaultOutlier(tp.OutlierDetection)
	for _, pl := range tp.PortLevelSettings {
		defaultOutlier(pl.GetOutlierDetection())
	}
}

func defaultOutlier(o *networking.OutlierDetection) {
	if o == nil || o.ConsecutiveErrors <= 0 { //nolint:staticcheck // mapping the deprecated field; negative values fail validation
		return
	}
	if o.Consecutive_5XxErrors == nil { //nolint:staticcheck
		o.Consecutive_5XxErrors = wrapperspb.UInt32(uint32(o.ConsecutiveErrors)) //nolint:staticcheck
	}
	o.ConsecutiveErrors = 0 //nolint:staticcheck
}
