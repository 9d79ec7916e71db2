package daemon

import (
	"log/slog"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"

	"skiff.dev/skiff/internal/admission/istiosubsets"
	"skiff.dev/skiff/internal/apis/istio"
	"skiff.dev/skiff/internal/apiserver"
)

// Istio's kinds (networking.istio.io, security.istio.io) are served with
// istio.io/client-go's types, added to client-go's scheme here; the
// versions other than v1 are served by conversion from the stored v1.
func init() {
	utilruntime.Must(istio.AddToScheme(scheme.Scheme))
	for group, versions := range istio.Versions {
		for _, kind := range istio.Kinds[group] {
			for _, v := range versions {
				if v == istio.StorageVersion {
					continue
				}
				conversions[schema.GroupVersionKind{Group: group, Version: v, Kind: kind}] = apiserver.Conversion{
					ToServed: func(o runtime.Object) (runtime.Object, error) { return istio.Convert(scheme.Scheme, o, v) },
					ToStored: func(o runtime.Object) (runtime.Object, error) {
						return istio.Convert(scheme.Scheme, o, istio.StorageVersion)
					},
				}
			}
		}
	}
}

// istioPreDecode checks Istio objects' JSON before decoding (unknown
// fields, types, deprecated fields the Go types lost).
func istioPreDecode(gk schema.GroupKind, data []byte) ([]byte, []string, error) {
	return istio.PreDecode(scheme.Scheme, gk, data)
}

// withIstio adds Istio's defaults and validation to the built-in chain.
func withIstio(a apiserver.Admission) apiserver.Admission {
	def, create, update := a.Default, a.ValidateCreate, a.ValidateUpdate
	a.Default = func(obj runtime.Object) {
		if def != nil {
			def(obj)
		}
		istio.Default(obj)
	}
	a.ValidateCreate = func(obj runtime.Object) field.ErrorList {
		var errs field.ErrorList
		if create != nil {
			errs = create(obj)
		}
		return append(errs, istio.ValidateCreate(obj)...)
	}
	a.ValidateUpdate = func(obj, old runtime.Object) field.ErrorList {
		var errs field.ErrorList
		if update != nil {
			errs = update(obj, old)
		}
		return append(errs, istio.ValidateUpdate(obj, old)...)
	}
	return a
}

// addIstioPlugins adds the Istio admission plugins: a warning for
// VirtualService subsets no DestinationRule defines.
func (p *admissionPlugins) addIstioPlugins(cfg *rest.Config, log *slog.Logger) error {
	ic, err := istio.NewForConfig(cfg)
	if err != nil {
		return err
	}
	p.validators = append(p.validators, istiosubsets.New(ic, p.factory, log))
	return nil
}
