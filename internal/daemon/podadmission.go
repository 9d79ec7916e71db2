package daemon

import (
	"log/slog"

	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"

	"skiff.dev/skiff/internal/admission/defaulttolerations"
	"skiff.dev/skiff/internal/admission/limitranger"
	"skiff.dev/skiff/internal/admission/meshinject"
	"skiff.dev/skiff/internal/admission/podpreset"
	settingsv1alpha1 "skiff.dev/skiff/internal/apis/settings/v1alpha1"
	"skiff.dev/skiff/internal/apiserver"
)

// The API server decodes, stores and encodes through client-go's scheme;
// settings.k8s.io/v1alpha1 PodPreset (gone from k8s.io/api) is Skiff's own
// type and is added to it here.
func init() {
	utilruntime.Must(settingsv1alpha1.AddToScheme(scheme.Scheme))
}

// addPodPlugins adds the pod admission plugins, in upstream's order:
// PodPreset, LimitRanger and DefaultTolerationSeconds mutate (after the
// defaults), then the mesh's sidecar injector; LimitRanger also
// validates, ahead of the validators already there (ResourceQuota stays
// last, as upstream).
func (p *admissionPlugins) addPodPlugins(cfg *rest.Config, opts ServerOptions, log *slog.Logger) error {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	settings, err := settingsv1alpha1.NewForConfig(cfg)
	if err != nil {
		return err
	}
	presets := podpreset.New(settings, p.factory, log, podpreset.Options{})
	limits := limitranger.New(cs, p.factory, log, limitranger.Options{})
	tolerations := defaulttolerations.New(defaulttolerations.Options{
		NotReadySeconds:    opts.DefaultNotReadyTolerationSeconds,
		UnreachableSeconds: opts.DefaultUnreachableTolerationSeconds,
	})
	// The sidecar injector runs last, where upstream runs mutating
	// webhooks (Istio's injector is one).
	inject := meshinject.New(cs, p.factory, log, meshinject.Options{})
	p.mutators = append(p.mutators, presets, limits, tolerations, inject)
	p.validators = append([]apiserver.Validator{limits}, p.validators...)
	return nil
}
