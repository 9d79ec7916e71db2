package istio

import (
	"fmt"
	"reflect"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	networkingv1alpha3 "istio.io/client-go/pkg/apis/networking/v1alpha3"
	networkingv1beta1 "istio.io/client-go/pkg/apis/networking/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	securityv1beta1 "istio.io/client-go/pkg/apis/security/v1beta1"
	versioned "istio.io/client-go/pkg/clientset/versioned"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
)

// The API groups.
const (
	NetworkingGroup = "networking.istio.io"
	SecurityGroup   = "security.istio.io"
)

// StorageVersion is the version every kind is stored in.
const StorageVersion = "v1"

// AddToScheme registers the served group versions' types (Istio's
// client-go types) with a scheme.
var AddToScheme = schemeBuilder.AddToScheme

var schemeBuilder = runtime.SchemeBuilder{
	networkingv1.AddToScheme,
	networkingv1beta1.AddToScheme,
	networkingv1alpha3.AddToScheme,
	securityv1.AddToScheme,
	securityv1beta1.AddToScheme,
}

// Kinds lists the served kinds by group.
var Kinds = map[string][]string{
	NetworkingGroup: {"VirtualService", "DestinationRule", "Gateway", "ServiceEntry", "Sidecar"},
	SecurityGroup:   {"PeerAuthentication", "AuthorizationPolicy", "RequestAuthentication"},
}

// Versions lists the served versions by group, the stored one first.
var Versions = map[string][]string{
	NetworkingGroup: {"v1", "v1beta1", "v1alpha3"},
	SecurityGroup:   {"v1", "v1beta1"},
}

// Is reports whether gk is one of the kinds this package serves.
func Is(gk schema.GroupKind) bool {
	for _, k := range Kinds[gk.Group] {
		if k == gk.Kind {
			return true
		}
	}
	return false
}

// Convert returns a copy of obj, an Istio object in any served version,
// as version (same group and kind). The copy shares nothing with obj.
func Convert(s *runtime.Scheme, obj runtime.Object, version string) (runtime.Object, error) {
	gvk, err := kindOf(s, obj)
	if err != nil {
		return nil, err
	}
	if !Is(gvk.GroupKind()) {
		return nil, fmt.Errorf("convert %v: not an istio kind this server serves", gvk)
	}
	to := gvk.GroupVersion().Group
	out, err := s.New(schema.GroupVersionKind{Group: to, Version: version, Kind: gvk.Kind})
	if err != nil {
		return nil, fmt.Errorf("convert %v to %s: %w", gvk, version, err)
	}
	// The versions' structs have the same fields of the same types
	// (Istio's v1 and v1beta1 specs alias v1alpha3's).
	src := reflect.ValueOf(obj.DeepCopyObject()).Elem()
	dst := reflect.ValueOf(out).Elem()
	for _, f := range []string{"ObjectMeta", "Spec", "Status"} {
		sf, df := src.FieldByName(f), dst.FieldByName(f)
		if !sf.IsValid() || !df.IsValid() || sf.Type() != df.Type() {
			return nil, fmt.Errorf("convert %v to %s: field %s differs", gvk, version, f)
		}
		df.Set(sf)
	}
	out.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{Group: to, Version: version, Kind: gvk.Kind})
	return out, nil
}

// kindOf is the object's kind from the scheme (TypeMeta may be empty).
func kindOf(s *runtime.Scheme, obj runtime.Object) (schema.GroupVersionKind, error) {
	gvks, _, err := s.ObjectKinds(obj)
	if err != nil || len(gvks) == 0 {
		return schema.GroupVersionKind{}, fmt.Errorf("convert %T: %w", obj, err)
	}
	return gvks[0], nil
}

// NewForConfig returns Istio's typed clientset
// (istio.io/client-go/pkg/clientset/versioned) for a Skiff API server;
// its informers (istio.io/client-go/pkg/informers/externalversions) work
// the same way.
func NewForConfig(cfg *rest.Config) (versioned.Interface, error) {
	return versioned.NewForConfig(cfg)
}
