package istio

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
)

// ValidateCreate validates a new Istio object in its stored form (v1).
// Objects of other types give no errors (they are not this package's).
func ValidateCreate(obj runtime.Object) field.ErrorList {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil
	}
	var errs field.ErrorList
	switch o := obj.(type) {
	case *networkingv1.VirtualService:
		errs = validateVirtualService(&o.Spec)
	case *networkingv1.DestinationRule:
		errs = validateDestinationRule(&o.Spec)
	case *networkingv1.Gateway:
		errs = validateGateway(&o.Spec)
	case *networkingv1.ServiceEntry:
		errs = validateServiceEntry(&o.Spec)
	case *networkingv1.Sidecar:
		errs = validateSidecar(&o.Spec)
	case *securityv1.PeerAuthentication:
		errs = validatePeerAuthentication(&o.Spec)
	case *securityv1.AuthorizationPolicy:
		errs = validateAuthorizationPolicy(&o.Spec)
	case *securityv1.RequestAuthentication:
		errs = validateRequestAuthentication(&o.Spec)
	default:
		return nil
	}
	meta := apivalidation.ValidateObjectMetaAccessor(m, true, apivalidation.NameIsDNSSubdomain, field.NewPath("metadata"))
	return append(meta, errs...)
}

// ValidateUpdate validates an updated Istio object against the old one:
// the new object as on create, plus metadata's immutable fields. Specs
// change freely, as upstream's CRDs allow.
func ValidateUpdate(obj, old runtime.Object) field.ErrorList {
	errs := ValidateCreate(obj)
	m, mok := obj.(metav1.Object)
	om, ook := old.(metav1.Object)
	if mok && ook && isIstio(obj) {
		errs = append(errs, apivalidation.ValidateObjectMetaAccessorUpdate(m, om, field.NewPath("metadata"))...)
	}
	return errs
}

func isIstio(obj runtime.Object) bool {
	switch obj.(type) {
	case *networkingv1.VirtualService, *networkingv1.DestinationRule, *networkingv1.Gateway,
		*networkingv1.ServiceEntry, *networkingv1.Sidecar, *securityv1.PeerAuthentication,
		*securityv1.AuthorizationPolicy, *securityv1.RequestAuthentication:
		return true
	}
	return false
}

var specPath = field.NewPath("spec")

// validateHost checks a service host name: a DNS name, optionally with a
// leading "*." wildcard, or "*" where allowed.
func validateHost(h string, p *field.Path, allowStar bool) field.ErrorList {
	switch {
	case h == "":
		return field.ErrorList{field.Required(p, "host must not be empty")}
	case h == "*":
		if allowStar {
			return nil
		}
		return field.ErrorList{field.Invalid(p, h, "wildcard host * is not allowed here")}
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return nil
	}
	name := strings.TrimPrefix(h, "*.")
	name = strings.TrimSuffix(name, ".")
	if len(h) > 255 {
		return field.ErrorList{field.TooLong(p, h, 255)}
	}
	for _, label := range strings.Split(name, ".") {
		if errs := validation.IsDNS1123Label(strings.ToLower(label)); len(errs) > 0 {
			return field.ErrorList{field.Invalid(p, h, "must be a fully qualified domain name, optionally with a leading wildcard (*.): "+errs[0])}
		}
	}
	return nil
}

// validateDuration checks an Istio duration: at least 1ms, millisecond
// precision.
func validateDuration(d *durationpb.Duration, p *field.Path) field.ErrorList {
	if d == nil {
		return nil
	}
	if err := d.CheckValid(); err != nil {
		return field.ErrorList{field.Invalid(p, d.String(), err.Error())}
	}
	dur := d.AsDuration()
	switch {
	case dur < time.Millisecond:
		return field.ErrorList{field.Invalid(p, dur.String(), "duration must be greater than 1ms")}
	case dur%time.Millisecond != 0:
		return field.ErrorList{field.Invalid(p, dur.String(), "only durations to ms precision are supported")}
	}
	return nil
}

// validatePercent checks an integer percentage.
func validatePercent(v int32, p *field.Path) field.ErrorList {
	if v < 0 || v > 100 {
		return field.ErrorList{field.Invalid(p, v, "must be in the range 0..100")}
	}
	return nil
}

// validateFraction checks a fractional percentage.
func validateFraction(v float64, p *field.Path) field.ErrorList {
	if v < 0 || v > 100 || (v > 0 && v < 0.0001) {
		return field.ErrorList{field.Invalid(p, v, "must be 0 or in the range [0.0001, 100]")}
	}
	return nil
}

func validatePort(port uint32, p *field.Path) field.ErrorList {
	if port == 0 || port > 65535 {
		return field.ErrorList{field.Invalid(p, port, "must be in the range 1..65535")}
	}
	return nil
}

func validateLabels(l map[string]string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for k, v := range l {
		for _, msg := range validation.IsQualifiedName(k) {
			errs = append(errs, field.Invalid(p.Key(k), k, msg))
		}
		for _, msg := range validation.IsValidLabelValue(v) {
			errs = append(errs, field.Invalid(p.Key(k), v, msg))
		}
	}
	return errs
}

func fmtInvalid(p *field.Path, v any, format string, args ...any) *field.Error {
	return field.Invalid(p, v, fmt.Sprintf(format, args...))
}
