package apiserver

import (
	"context"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Admission is the chain every write passes after decoding: defaults,
// mutating plugins, validation, then validating plugins. Nil funcs are
// skipped.
type Admission struct {
	Default        func(obj runtime.Object)
	ValidateCreate func(obj runtime.Object) field.ErrorList
	ValidateUpdate func(obj, old runtime.Object) field.ErrorList
	// Mutators run in order after the defaults, before validation
	// (LimitRange defaults, PodPreset, ...).
	Mutators []Mutator
	// Validators run in order after validation (ResourceQuota, ...).
	Validators []Validator
}

// Operation names a write, as upstream admission does.
type Operation string

const (
	Create Operation = "CREATE"
	Update Operation = "UPDATE"
)

// Attributes describe one write to admission plugins. Objects are in
// their storage form.
type Attributes struct {
	Operation   Operation
	Kind        schema.GroupVersionKind // storage kind
	Resource    schema.GroupResource
	Subresource string // "" for the main resource, "status", "scale", ...
	Namespace   string
	Name        string // may be empty on create with generateName
	Object      runtime.Object
	OldObject   runtime.Object // nil on create
	DryRun      bool
}

// Mutator is an admission plugin that may change the object. Plugins
// read other objects through their own informers, never the store.
type Mutator interface {
	Admit(ctx context.Context, a *Attributes) error
}

// Validator is an admission plugin that accepts or rejects a write
// without changing it.
type Validator interface {
	Validate(ctx context.Context, a *Attributes) error
}

// MutatorFunc and ValidatorFunc adapt functions to the plugin interfaces.
type (
	MutatorFunc   func(ctx context.Context, a *Attributes) error
	ValidatorFunc func(ctx context.Context, a *Attributes) error
)

func (f MutatorFunc) Admit(ctx context.Context, a *Attributes) error      { return f(ctx, a) }
func (f ValidatorFunc) Validate(ctx context.Context, a *Attributes) error { return f(ctx, a) }

// admit runs defaults, mutators, validation and validators on a
// stored-form object (old is nil on create). Field errors become a 422
// Status; a plugin's error that is not already a Status becomes 403
// Forbidden, as upstream's admission rejections are.
func (s *Server) admit(ctx context.Context, k *kind, subresource string, obj, old runtime.Object, dryRun bool) error {
	a := s.cfg.Admission
	if a.Default != nil {
		a.Default(obj)
	}
	attrs := &Attributes{
		Operation: Create, Kind: k.storage, Resource: k.gr, Subresource: subresource,
		Namespace: accessor(obj).GetNamespace(), Name: accessor(obj).GetName(),
		Object: obj, OldObject: old, DryRun: dryRun,
	}
	if old != nil {
		attrs.Operation = Update
	}
	for _, m := range a.Mutators {
		if err := m.Admit(ctx, attrs); err != nil {
			return admissionError(k, attrs.Name, err)
		}
	}
	var errs field.ErrorList
	if old == nil && a.ValidateCreate != nil {
		errs = a.ValidateCreate(obj)
	} else if old != nil && a.ValidateUpdate != nil {
		errs = a.ValidateUpdate(obj, old)
	}
	if len(errs) > 0 {
		return apierrors.NewInvalid(k.gk, accessor(obj).GetName(), errs)
	}
	for _, v := range a.Validators {
		if err := v.Validate(ctx, attrs); err != nil {
			return admissionError(k, attrs.Name, err)
		}
	}
	return nil
}

func admissionError(k *kind, name string, err error) error {
	if _, ok := err.(apierrors.APIStatus); ok {
		return err
	}
	return apierrors.NewForbidden(k.gr, name, err)
}
