package daemon

import (
	"context"
	"log/slog"
	"slices"

	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"skiff.dev/skiff/internal/admission/resourcequota"
	"skiff.dev/skiff/internal/apiserver"
)

// admissionPlugins are the admission plugins that read the cluster, as
// upstream's do: each reads through one shared informer factory on the
// loopback clientset, which starts once the API serves (a plugin waits
// for its caches before it judges a write).
type admissionPlugins struct {
	factory    informers.SharedInformerFactory
	mutators   []apiserver.Mutator
	validators []apiserver.Validator
}

// newAdmissionPlugins builds the plugins on the loopback config. It does
// no I/O.
func newAdmissionPlugins(cfg *rest.Config, log *slog.Logger) (*admissionPlugins, error) {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	p := &admissionPlugins{factory: informers.NewSharedInformerFactory(cs, 0)}
	p.validators = append(p.validators, resourcequota.New(cs, p.factory, log, resourcequota.Options{}))
	return p, nil
}

// chain is the built-in admission (defaults, validation) with the plugins.
func (p *admissionPlugins) chain() apiserver.Admission {
	a := admission
	a.Mutators = append(slices.Clone(a.Mutators), p.mutators...)
	a.Validators = append(slices.Clone(a.Validators), p.validators...)
	return a
}

// start runs the plugins' informers until ctx ends or the returned stop
// is called; stop waits for them to end.
func (p *admissionPlugins) start(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	p.factory.Start(ctx.Done())
	return func() { cancel(); p.factory.Shutdown() }
}
