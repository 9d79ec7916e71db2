package istio

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/reflect/protoreflect"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// PreDecode checks and rewrites the JSON of an Istio object (any served
// version of kind gk) before it is decoded into the Go type, whose
// protobuf-JSON decoding of spec and status silently drops what it does
// not know. It walks spec and status against the protobuf descriptors
// and
//
//   - removes unknown fields and reports each as `unknown field "<path>"`
//     (the message kube-apiserver gives for a CRD's undeclared fields; the
//     caller applies the request's fieldValidation mode);
//   - rejects values of the wrong JSON type, unknown enum names and
//     unparsable durations with a 422 naming the field path;
//   - maps deprecated fields the Go types no longer carry
//     (fault.abort.percent → fault.abort.percentage.value).
//
// Fields outside spec and status are left to the caller's strict decoding.
// Data that is not a JSON object is returned unchanged for the caller's
// decoder to reject.
func PreDecode(s *runtime.Scheme, gk schema.GroupKind, data []byte) (out []byte, unknown []string, err error) {
	if !Is(gk) {
		return data, nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var obj map[string]any
	if dec.Decode(&obj) != nil || obj == nil {
		return data, nil, nil
	}
	proto, err := s.New(gk.WithVersion(StorageVersion))
	if err != nil {
		return nil, nil, err
	}
	w := &walker{}
	for _, part := range []struct{ key, field string }{{"spec", "Spec"}, {"status", "Status"}} {
		v, ok := obj[part.key]
		if !ok || v == nil {
			continue
		}
		md := descriptorOf(proto, part.field)
		if md == nil {
			continue
		}
		obj[part.key] = w.value(md, v, field.NewPath(part.key))
	}
	if len(w.errs) > 0 {
		return nil, nil, apierrors.NewInvalid(gk, nameOf(obj), w.errs)
	}
	if out, err = json.Marshal(obj); err != nil {
		return nil, nil, err
	}
	for _, p := range w.unknown {
		unknown = append(unknown, fmt.Sprintf("unknown field %q", p))
	}
	return out, unknown, nil
}

// descriptorOf returns the protobuf descriptor of obj's struct field name.
func descriptorOf(obj runtime.Object, name string) protoreflect.MessageDescriptor {
	f := reflect.ValueOf(obj).Elem().FieldByName(name)
	if !f.IsValid() {
		return nil
	}
	m, ok := f.Addr().Interface().(interface{ ProtoReflect() protoreflect.Message })
	if !ok {
		return nil
	}
	return m.ProtoReflect().Descriptor()
}

func nameOf(obj map[string]any) string {
	m, _ := obj["metadata"].(map[string]any)
	n, _ := m["name"].(string)
	return n
}

// walker collects what one object's walk finds.
type walker struct {
	unknown []string
	errs    field.ErrorList
}

// deprecated rewrites a message's deprecated fields in place, by the
// message's full name.
var deprecated = map[protoreflect.FullName]func(obj map[string]any){
	// HTTPFaultInjection.Abort lost its int `percent` (deprecated since
	// Istio 1.1) from the protos; configurations in the wild still have it.
	"istio.networking.v1alpha3.HTTPFaultInjection.Abort": func(obj map[string]any) {
		p, ok := obj["percent"]
		if !ok {
			return
		}
		delete(obj, "percent")
		if _, has := obj["percentage"]; has || p == nil {
			return
		}
		obj["percentage"] = map[string]any{"value": p}
	},
}

// value checks v as a value of message md and returns it, unknown fields
// removed.
func (w *walker) value(md protoreflect.MessageDescriptor, v any, p *field.Path) any {
	if v == nil {
		return v
	}
	switch md.FullName() {
	case "google.protobuf.Value":
		return v
	case "google.protobuf.Struct":
		if _, ok := v.(map[string]any); !ok {
			w.errs = append(w.errs, field.Invalid(p, shown(v), "must be of type object"))
		}
		return v
	case "google.protobuf.ListValue":
		if _, ok := v.([]any); !ok {
			w.errs = append(w.errs, field.Invalid(p, shown(v), "must be of type array"))
		}
		return v
	case "google.protobuf.Any", "google.protobuf.Empty":
		if _, ok := v.(map[string]any); !ok {
			w.errs = append(w.errs, field.Invalid(p, shown(v), "must be of type object"))
		}
		return v
	case "google.protobuf.Duration":
		s, ok := v.(string)
		if !ok {
			w.errs = append(w.errs, field.Invalid(p, shown(v), "must be of type string"))
		} else if _, err := time.ParseDuration(s); err != nil {
			w.errs = append(w.errs, field.Invalid(p, s, `must be a duration such as "1.5s" or "300ms"`))
		}
		return v
	case "google.protobuf.Timestamp":
		s, ok := v.(string)
		if !ok {
			w.errs = append(w.errs, field.Invalid(p, shown(v), "must be of type string"))
		} else if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
			w.errs = append(w.errs, field.Invalid(p, s, "must be an RFC 3339 timestamp"))
		}
		return v
	case "google.protobuf.FieldMask":
		if _, ok := v.(string); !ok {
			w.errs = append(w.errs, field.Invalid(p, shown(v), "must be of type string"))
		}
		return v
	}
	if isWrapper(md) {
		w.scalar(md.Fields().ByNumber(1), v, p)
		return v
	}
	obj, ok := v.(map[string]any)
	if !ok {
		w.errs = append(w.errs, field.Invalid(p, shown(v), "must be of type object"))
		return v
	}
	if fix := deprecated[md.FullName()]; fix != nil {
		fix(obj)
	}
	fields := md.Fields()
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fd := fields.ByJSONName(k)
		if fd == nil {
			fd = fields.ByName(protoreflect.Name(k))
		}
		if fd == nil {
			w.unknown = append(w.unknown, p.Child(k).String())
			delete(obj, k)
			continue
		}
		obj[k] = w.field(fd, obj[k], p.Child(k))
	}
	return obj
}

func isWrapper(md protoreflect.MessageDescriptor) bool {
	if md.ParentFile() == nil || md.ParentFile().Path() != "google/protobuf/wrappers.proto" {
		return false
	}
	return md.Fields().Len() == 1
}

// field checks the value of one field (a list, a map or a singular value).
func (w *walker) field(fd protoreflect.FieldDescriptor, v any, p *field.Path) any {
	if v == nil {
		return v
	}
	switch {
	case fd.IsList():
		list, ok := v.([]any)
		if !ok {
			w.errs = append(w.errs, field.Invalid(p, shown(v), "must be of type array"))
			return v
		}
		for i := range list {
			list[i] = w.singular(fd, list[i], p.Index(i))
		}
		return list
	case fd.IsMap():
		m, ok := v.(map[string]any)
		if !ok {
			w.errs = append(w.errs, field.Invalid(p, shown(v), "must be of type object"))
			return v
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			m[k] = w.singular(fd.MapValue(), m[k], p.Key(k))
		}
		return m
	}
	return w.singular(fd, v, p)
}

func (w *walker) singular(fd protoreflect.FieldDescriptor, v any, p *field.Path) any {
	if fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind {
		return w.value(fd.Message(), v, p)
	}
	if v != nil {
		w.scalar(fd, v, p)
	}
	return v
}

// scalar checks a scalar or enum value as the protobuf-JSON decoder reads
// it (64-bit integers may be quoted).
func (w *walker) scalar(fd protoreflect.FieldDescriptor, v any, p *field.Path) {
	bad := func(typ string) {
		w.errs = append(w.errs, field.Invalid(p, shown(v), "must be of type "+typ))
	}
	switch fd.Kind() {
	case protoreflect.BoolKind:
		if _, ok := v.(bool); !ok {
			bad("boolean")
		}
	case protoreflect.StringKind, protoreflect.BytesKind:
		if _, ok := v.(string); !ok {
			bad("string")
		}
	case protoreflect.EnumKind:
		w.enum(fd.Enum(), v, p)
	case protoreflect.FloatKind, protoreflect.DoubleKind:
		switch x := v.(type) {
		case json.Number:
		case string:
			if _, err := strconv.ParseFloat(x, 64); err != nil && x != "NaN" && x != "Infinity" && x != "-Infinity" {
				bad("number")
			}
		default:
			bad("number")
		}
	default: // integers
		var s string
		switch x := v.(type) {
		case json.Number:
			s = x.String()
		case string:
			s = x
		default:
			bad("integer")
			return
		}
		if err := checkInt(fd.Kind(), s); err != nil {
			w.errs = append(w.errs, field.Invalid(p, shown(v), err.Error()))
		}
	}
}

// checkInt checks s is an integer in the range of kind.
func checkInt(kind protoreflect.Kind, s string) error {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) {
		return fmt.Errorf("must be of type integer")
	}
	var lo, hi float64
	switch kind {
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		lo, hi = math.MinInt32, math.MaxInt32
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		lo, hi = 0, math.MaxUint32
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		lo, hi = 0, math.MaxUint64
	default:
		lo, hi = math.MinInt64, math.MaxInt64
	}
	if f < lo || f > hi {
		return fmt.Errorf("must be between %.0f and %.0f", lo, hi)
	}
	return nil
}

func (w *walker) enum(ed protoreflect.EnumDescriptor, v any, p *field.Path) {
	switch x := v.(type) {
	case string:
		if ed.Values().ByName(protoreflect.Name(x)) != nil {
			return
		}
		names := make([]string, ed.Values().Len())
		for i := range names {
			names[i] = string(ed.Values().Get(i).Name())
		}
		w.errs = append(w.errs, field.NotSupported(p, x, names))
	case json.Number:
		if _, err := x.Int64(); err != nil {
			w.errs = append(w.errs, field.Invalid(p, x.String(), "must be an enum name or number"))
		}
	default:
		w.errs = append(w.errs, field.Invalid(p, shown(v), "must be of type string"))
	}
}

// shown is a short form of a JSON value for error messages.
func shown(v any) any {
	switch x := v.(type) {
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case json.Number:
		return x.String()
	case string:
		if len(x) > 64 {
			return strings.ToValidUTF8(x[:64], "") + "..."
		}
	}
	return v
}
