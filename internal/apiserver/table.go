package apiserver

import (
	"encoding/json"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

var defaultColumns = []metav1.TableColumnDefinition{
	{Name: "Name", Type: "string", Format: "name", Description: metav1.ObjectMeta{}.SwaggerDoc()["name"]},
	{Name: "Created At", Type: "date", Description: metav1.ObjectMeta{}.SwaggerDoc()["creationTimestamp"]},
}

func defaultCells(obj runtime.Object, _ time.Time) ([]any, error) {
	m := accessor(obj)
	return []any{m.GetName(), m.GetCreationTimestamp().UTC().Format(time.RFC3339)}, nil
}

// table converts served-form objects to a Table; withColumns=false leaves
// the column definitions out (watch events after the first).
func (s *Server) table(k *kind, objs []runtime.Object, includeObject string, out output, withColumns bool) (*metav1.Table, error) {
	columns, cells := defaultColumns, defaultCells
	if s.cfg.Tables != nil {
		if c, f := s.cfg.Tables(k.gk); f != nil {
			columns, cells = c, f
		}
	}
	version := out.tableVersion
	if version == "" {
		version = "v1"
	}
	t := &metav1.Table{TypeMeta: metav1.TypeMeta{Kind: "Table", APIVersion: "meta.k8s.io/" + version}, Rows: make([]metav1.TableRow, 0, len(objs))}
	if withColumns {
		t.ColumnDefinitions = columns
	}
	now := s.now()
	for _, obj := range objs {
		printed := obj
		if k.toStored != nil {
			// Printers know the stored version of multi-version kinds.
			var err error
			if printed, err = k.toStored(obj.DeepCopyObject()); err != nil {
				return nil, apierrors.NewInternalError(err)
			}
		}
		row, err := cells(printed, now)
		if err != nil {
			return nil, apierrors.NewInternalError(err)
		}
		tr := metav1.TableRow{Cells: row}
		var embed any
		switch includeObject {
		case "None":
		case "Object":
			embed = obj
		default:
			embed = partialMetadataV(obj, out)
		}
		if embed != nil {
			raw, err := json.Marshal(embed)
			if err != nil {
				return nil, apierrors.NewInternalError(err)
			}
			tr.Object = runtime.RawExtension{Raw: raw}
		}
		t.Rows = append(t.Rows, tr)
	}
	return t, nil
}

// partialList is the metadata-only list of served objects.
func partialList(objs []runtime.Object, out output) *metav1.PartialObjectMetadataList {
	l := &metav1.PartialObjectMetadataList{TypeMeta: metav1.TypeMeta{Kind: "PartialObjectMetadataList", APIVersion: "meta.k8s.io/v1"}}
	l.Items = make([]metav1.PartialObjectMetadata, len(objs))
	for i, obj := range objs {
		l.Items[i] = *partialMetadataV(obj, out)
	}
	return l
}
