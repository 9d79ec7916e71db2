package openapi

import (
	"reflect"
	"slices"
	"strings"

	"k8s.io/kube-openapi/pkg/common"
)

// param is one parameter of an operation; it implements common.Parameter.
type param struct {
	name, description string
	kind              common.ParameterKind
	dataType          string // "string", "integer", "boolean", ...
	required          bool
}

func (p param) Name() string               { return p.name }
func (p param) Description() string        { return p.description }
func (p param) Required() bool             { return p.required }
func (p param) Kind() common.ParameterKind { return p.kind }
func (p param) DataType() string           { return p.dataType }
func (p param) AllowMultiple() bool        { return false }

var (
	prettyParam = param{
		name:        "pretty",
		description: "If 'true', then the output is pretty printed. Defaults to 'false' unless the user-agent indicates a browser or command-line HTTP tool (curl and wget).",
		kind:        common.QueryParameterKind,
		dataType:    "string",
	}
	namespaceParam = param{
		name:        "namespace",
		description: "object name and auth scope, such as for teams and projects",
		kind:        common.PathParameterKind,
		dataType:    "string",
		required:    true,
	}
)

func nameParam(kind string) param {
	return param{
		name:        "name",
		description: "name of the " + kind,
		kind:        common.PathParameterKind,
		dataType:    "string",
		required:    true,
	}
}

// bodyParam is the request body; the builders take its schema from the
// route's request sample.
func bodyParam(required bool) param {
	return param{name: "body", kind: common.BodyParameterKind, required: required}
}

// documented is what the metav1 option types (ListOptions, CreateOptions,
// ...) implement: their field documentation keyed by JSON name.
type documented interface {
	SwaggerDoc() map[string]string
}

// optionParams returns a query parameter for each field of an options type,
// named by its JSON name and described by its documentation, skipping the
// names in exclude. This is how the upstream API server derives the query
// parameters of its operations (AddObjectParams), so fieldValidation,
// dryRun and fieldManager appear exactly where upstream has them.
func optionParams(opts documented, exclude ...string) []param {
	docs := opts.SwaggerDoc()
	t := reflect.TypeOf(opts)
	var out []param
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || slices.Contains(exclude, name) {
			continue
		}
		dataType := queryDataType(f.Type)
		if dataType == "" {
			continue // structs such as preconditions are not query parameters
		}
		out = append(out, param{
			name:        name,
			description: docs[name],
			kind:        common.QueryParameterKind,
			dataType:    dataType,
		})
	}
	return out
}

// queryDataType is the OpenAPI type of a query parameter holding a Go value
// of type t, or "" when t cannot be one. Lists are repeated parameters of
// their element type, as upstream declares them.
func queryDataType(t reflect.Type) string {
	if t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.String:
		return "string"
	}
	return ""
}
