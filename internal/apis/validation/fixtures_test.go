package validation

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"sigs.k8s.io/yaml"

	"skiff.dev/skiff/internal/apis/defaults"
)

// build decodes doc into a new T, applies mutate and then defaults, the way
// the API server sees an object a user sent.
func build[T any, P interface {
	*T
	runtime.Object
}](t *testing.T, doc string, mutate ...func(P)) P {
	t.Helper()
	obj := P(new(T))
	if err := yaml.UnmarshalStrict([]byte(strings.TrimSpace(doc)), obj); err != nil {
		t.Fatalf("decoding %T: %v", obj, err)
	}
	for _, m := range mutate {
		m(obj)
	}
	defaults.Default(obj)
	return obj
}

// stored is build for an object that is already stored: it has a
// resourceVersion, as every update must.
func stored[T any, P interface {
	*T
	runtime.Object
}](t *testing.T, doc string, mutate ...func(P)) P {
	t.Helper()
	obj := build[T, P](t, doc, mutate...)
	setResourceVersion(obj)
	return obj
}

func setResourceVersion(obj runtime.Object) {
	if m, ok := obj.(interface{ SetResourceVersion(string) }); ok {
		m.SetResourceVersion("7")
	}
}

// changed copies a stored object, applies mutate and defaults the result,
// as the API server would before validating an update.
func changed[P runtime.Object](old P, mutate func(P)) P {
	obj := old.DeepCopyObject().(P)
	mutate(obj)
	defaults.Default(obj)
	return obj
}

// want is an expected error: its type, field path and, optionally, a
// fragment of its detail.
type want struct {
	typ    field.ErrorType
	field  string
	detail string
}

func required(f string, d ...string) want {
	return want{typ: field.ErrorTypeRequired, field: f, detail: strings.Join(d, "")}
}
func invalid(f string, d ...string) want {
	return want{typ: field.ErrorTypeInvalid, field: f, detail: strings.Join(d, "")}
}
func forbidden(f string, d ...string) want {
	return want{typ: field.ErrorTypeForbidden, field: f, detail: strings.Join(d, "")}
}
func unsupported(f string) want { return want{typ: field.ErrorTypeNotSupported, field: f} }
func duplicate(f string) want   { return want{typ: field.ErrorTypeDuplicate, field: f} }
func notFound(f string) want    { return want{typ: field.ErrorTypeNotFound, field: f} }
func tooLong(f string) want     { return want{typ: field.ErrorTypeTooLong, field: f} }

// checkErrors requires errs to be exactly the wanted errors, in any order.
func checkErrors(t *testing.T, errs field.ErrorList, wants []want) {
	t.Helper()
	var got []string
	for _, e := range errs {
		got = append(got, fmt.Sprintf("%s %s", e.Type, e.Field))
	}
	var exp []string
	for _, w := range wants {
		exp = append(exp, fmt.Sprintf("%s %s", w.typ, w.field))
	}
	sort.Strings(got)
	sort.Strings(exp)
	if strings.Join(got, "\n") != strings.Join(exp, "\n") {
		t.Fatalf("errors:\n%s\nwant:\n%s", errs.ToAggregate(), strings.Join(exp, "\n"))
	}
	for _, w := range wants {
		if w.detail == "" {
			continue
		}
		found := false
		for _, e := range errs {
			if e.Type == w.typ && e.Field == w.field && strings.Contains(e.Error(), w.detail) {
				found = true
			}
		}
		if !found {
			t.Errorf("no %s error at %s mentions %q; errors: %s", w.typ, w.field, w.detail, errs.ToAggregate())
		}
	}
}
