// Package printers turns stored objects into the rows of a metav1.Table, the
// form the API server answers with when a client asks for
// "application/json;as=Table;g=meta.k8s.io;v=v1" (what kubectl get does).
//
// kubectl prints whatever columns the server defines, so each Printer here
// mirrors the columns and cell values of upstream kube-apiserver
// (kubernetes/kubernetes pkg/printers/internalversion), written against the
// versioned k8s.io/api types Skiff stores. Like upstream's table convertor,
// Cells always returns the wide (-o wide) cells too; kubectl drops columns
// whose Priority is above 0 unless asked for them.
//
// The package is pure: no I/O, no clock (callers pass now). Only the API
// server imports it.
package printers

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/duration"
)

// ErrWrongType is returned by Cells when handed an object that is not the
// Printer's kind (or a nil pointer to it).
var ErrWrongType = errors.New("object is not of the printer's type")

// Printer converts objects of one kind to table rows.
type Printer struct {
	Columns []metav1.TableColumnDefinition
	// Cells returns one row's cells (same length as Columns) for obj, a typed
	// object of the kind (e.g. *appsv1.Deployment). now is passed in for ages.
	Cells func(obj runtime.Object, now time.Time) ([]any, error)
}

// For returns the printer for a group and kind ("apps", "Deployment"; the core
// group is ""). Kinds without a specific printer get Default(). The
// returned Columns are the caller's to modify.
func For(gk schema.GroupKind) Printer {
	if p, ok := byKind[gk]; ok {
		p.Columns = slices.Clone(p.Columns)
		return p
	}
	return Default()
}

// Default is the printer upstream uses for kinds without their own: the
// object's name and its creation time in RFC 3339, UTC.
func Default() Printer {
	return Printer{
		Columns: []metav1.TableColumnDefinition{
			nameColumn(),
			{Name: "Created At", Type: "date", Description: objectMetaDoc["creationTimestamp"]},
		},
		Cells: func(obj runtime.Object, _ time.Time) ([]any, error) {
			m, ok := obj.(metav1.Object)
			if !ok || isNil(obj) {
				return nil, fmt.Errorf("printing %T: %w", obj, ErrWrongType)
			}
			return []any{m.GetName(), m.GetCreationTimestamp().UTC().Format(time.RFC3339)}, nil
		},
	}
}

// isNil reports whether obj is nil or a typed nil pointer, which the
// metav1.Object accessors would dereference.
func isNil(obj runtime.Object) bool {
	if obj == nil {
		return true
	}
	v := reflect.ValueOf(obj)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

// byKind holds every kind-specific printer. The entries live next to the
// cell functions, one file per area.
var byKind = func() map[schema.GroupKind]Printer {
	m := map[schema.GroupKind]Printer{}
	for _, add := range []func(map[schema.GroupKind]Printer){
		addPodPrinters, addWorkloadPrinters, addBatchPrinters, addAutoscalingPrinters,
		addNetworkPrinters, addClusterPrinters, addConfigPrinters, addStoragePrinters, addAccessPrinters,
		addIstioPrinters,
	} {
		add(m)
	}
	return m
}()

// typed adapts a cell function over one concrete type to Printer.Cells.
func typed[T any, P interface {
	*T
	runtime.Object
}](columns []metav1.TableColumnDefinition, cells func(o P, now time.Time) []any) Printer {
	return Printer{
		Columns: columns,
		Cells: func(obj runtime.Object, now time.Time) ([]any, error) {
			o, ok := obj.(P)
			if !ok || (*T)(o) == nil {
				return nil, fmt.Errorf("printing %T as %T: %w", obj, P(nil), ErrWrongType)
			}
			return cells(o, now), nil
		},
	}
}

// Column helpers. Descriptions follow upstream (mostly the swagger docs).

var objectMetaDoc = metav1.ObjectMeta{}.SwaggerDoc()

func nameColumn() metav1.TableColumnDefinition {
	return metav1.TableColumnDefinition{Name: "Name", Type: "string", Format: "name", Description: objectMetaDoc["name"]}
}

func ageColumn() metav1.TableColumnDefinition {
	return column("Age", "string", objectMetaDoc["creationTimestamp"])
}

func column(name, typ, description string) metav1.TableColumnDefinition {
	return metav1.TableColumnDefinition{Name: name, Type: typ, Description: description}
}

// wide is a column kubectl shows only with -o wide.
func wide(name, typ, description string) metav1.TableColumnDefinition {
	c := column(name, typ, description)
	c.Priority = 1
	return c
}

// templateColumns are the wide Containers, Images (and, when selectorDoc is
// not empty, Selector) columns of the workload kinds.
func templateColumns(selectorDoc string) []metav1.TableColumnDefinition {
	cols := []metav1.TableColumnDefinition{
		wide("Containers", "string", "Names of each container in the template."),
		wide("Images", "string", "Images referenced by each container in the template."),
	}
	if selectorDoc != "" {
		cols = append(cols, wide("Selector", "string", selectorDoc))
	}
	return cols
}

// Cell formatting shared by several kinds.

// age is the human duration from t to now, "<unknown>" for the zero time.
func age(t metav1.Time, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(t.Time))
}

func microAge(t metav1.MicroTime, now time.Time) string {
	if t.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(t.Time))
}

// containerCells joins container names and images, comma separated.
func containerCells(containers []corev1.Container) (names, images string) {
	n := make([]string, len(containers))
	im := make([]string, len(containers))
	for i, c := range containers {
		n[i], im[i] = c.Name, c.Image
	}
	return strings.Join(n, ","), strings.Join(im, ",")
}

func boolString(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

func boolPtrString(b *bool) string {
	if b == nil {
		return "<unset>"
	}
	return boolString(*b)
}

func stringOr(s *string, fallback string) string {
	if s == nil {
		return fallback
	}
	return *s
}

// firstN joins up to n of items with sep and says how many more there were,
// as in "a,b,c + 2 more...". Empty input gives empty.
func firstN(items []string, n int, sep string) string {
	if len(items) <= n {
		return strings.Join(items, sep)
	}
	return fmt.Sprintf("%s + %d more...", strings.Join(items[:n], sep), len(items)-n)
}

// sortedUnique returns the distinct non-empty strings of in, sorted.
func sortedUnique(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}
