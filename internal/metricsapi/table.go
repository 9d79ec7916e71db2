package metricsapi

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	metricsv1beta1 "k8s.io/metrics/pkg/apis/metrics/v1beta1"
)

// toTable renders NodeMetrics or PodMetrics (one or a list) as
// metrics-server does: Name, one column per resource (a pod's usage is
// its containers' sum) and Window. includeObject is the request's
// parameter: None, Object, or (default) Metadata.
func toTable(obj any, version, includeObject string) *metav1.Table {
	t := &metav1.Table{TypeMeta: metav1.TypeMeta{Kind: "Table", APIVersion: "meta.k8s.io/" + version}}
	var rows []tableRow
	switch o := obj.(type) {
	case *metricsv1beta1.NodeMetrics:
		rows = append(rows, nodeRow(o))
	case *metricsv1beta1.NodeMetricsList:
		for i := range o.Items {
			rows = append(rows, nodeRow(&o.Items[i]))
		}
	case *metricsv1beta1.PodMetrics:
		rows = append(rows, podRow(o))
	case *metricsv1beta1.PodMetricsList:
		for i := range o.Items {
			rows = append(rows, podRow(&o.Items[i]))
		}
	}
	t.ColumnDefinitions = []metav1.TableColumnDefinition{
		{Name: "Name", Type: "string", Format: "name", Description: "Name of the resource"},
	}
	var names []corev1.ResourceName
	if len(rows) > 0 {
		for name := range rows[0].usage {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, n := range names {
			t.ColumnDefinitions = append(t.ColumnDefinitions, metav1.TableColumnDefinition{Name: string(n), Type: "string", Format: "quantity"})
		}
		t.ColumnDefinitions = append(t.ColumnDefinitions, metav1.TableColumnDefinition{Name: "Window", Type: "string", Format: "duration"})
	}
	t.Rows = []metav1.TableRow{}
	for _, r := range rows {
		cells := []any{r.meta.Name}
		for _, n := range names {
			q := r.usage[n]
			cells = append(cells, q.String())
		}
		cells = append(cells, r.window.Duration.String())
		row := metav1.TableRow{Cells: cells}
		switch includeObject {
		case string(metav1.IncludeNone):
		case string(metav1.IncludeObject):
			row.Object = runtime.RawExtension{Object: r.obj}
		default:
			row.Object = runtime.RawExtension{Object: &metav1.PartialObjectMetadata{
				TypeMeta:   metav1.TypeMeta{Kind: "PartialObjectMetadata", APIVersion: "meta.k8s.io/v1"},
				ObjectMeta: *r.meta,
			}}
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

type tableRow struct {
	meta   *metav1.ObjectMeta
	usage  corev1.ResourceList
	window metav1.Duration
	obj    runtime.Object
}

func nodeRow(m *metricsv1beta1.NodeMetrics) tableRow {
	c := m.DeepCopy()
	c.TypeMeta = metav1.TypeMeta{Kind: "NodeMetrics", APIVersion: GroupVersion.String()}
	return tableRow{meta: &m.ObjectMeta, usage: m.Usage, window: m.Window, obj: c}
}

func podRow(m *metricsv1beta1.PodMetrics) tableRow {
	usage := corev1.ResourceList{}
	for _, c := range m.Containers {
		for name, q := range c.Usage {
			sum := usage[name]
			sum.Add(q)
			usage[name] = sum
		}
	}
	c := m.DeepCopy()
	c.TypeMeta = metav1.TypeMeta{Kind: "PodMetrics", APIVersion: GroupVersion.String()}
	return tableRow{meta: &m.ObjectMeta, usage: usage, window: m.Window, obj: c}
}
