package printers

import (
	"encoding/json"
	"time"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Istio's kinds print the additionalPrinterColumns of Istio's CRDs the way
// kube-apiserver's CRD table convertor does: string columns hold the
// JSONPath result (lists as JSON, e.g. ["bookinfo-gateway"]), missing
// values are empty (upstream sends null; kubectl prints both blank), and Age is a "date" column with the human
// duration. Cells get the stored version (v1) of every served version.
// Enum columns print the enum's name even when it is the default, which
// protobuf JSON leaves out of the object.
func addIstioPrinters(m map[schema.GroupKind]Printer) {
	net := func(kind string) schema.GroupKind { return schema.GroupKind{Group: "networking.istio.io", Kind: kind} }
	sec := func(kind string) schema.GroupKind { return schema.GroupKind{Group: "security.istio.io", Kind: kind} }
	m[net("VirtualService")] = typed([]metav1.TableColumnDefinition{
		nameColumn(),
		column("Gateways", "string", "The names of gateways and sidecars that should apply these routes"),
		column("Hosts", "string", "The destination hosts to which traffic is being sent"),
		crdAgeColumn(),
	}, func(o *networkingv1.VirtualService, now time.Time) []any {
		return []any{o.Name, jsonList(o.Spec.Gateways), jsonList(o.Spec.Hosts), age(o.CreationTimestamp, now)}
	})
	m[net("DestinationRule")] = typed([]metav1.TableColumnDefinition{
		nameColumn(),
		column("Host", "string", "The name of a service from the service registry"),
		crdAgeColumn(),
	}, func(o *networkingv1.DestinationRule, now time.Time) []any {
		return []any{o.Name, o.Spec.Host, age(o.CreationTimestamp, now)}
	})
	m[net("Gateway")] = typed([]metav1.TableColumnDefinition{nameColumn(), crdAgeColumn()},
		func(o *networkingv1.Gateway, now time.Time) []any {
			return []any{o.Name, age(o.CreationTimestamp, now)}
		})
	m[net("ServiceEntry")] = typed([]metav1.TableColumnDefinition{
		nameColumn(),
		column("Hosts", "string", "The hosts associated with the ServiceEntry"),
		column("Location", "string", "Whether the service is external to the mesh or part of the mesh (MESH_EXTERNAL or MESH_INTERNAL)"),
		column("Resolution", "string", "Service resolution mode for the hosts (NONE, STATIC, or DNS)"),
		crdAgeColumn(),
	}, func(o *networkingv1.ServiceEntry, now time.Time) []any {
		return []any{o.Name, jsonList(o.Spec.Hosts), o.Spec.Location.String(), o.Spec.Resolution.String(), age(o.CreationTimestamp, now)}
	})
	m[net("Sidecar")] = typed([]metav1.TableColumnDefinition{nameColumn(), crdAgeColumn()},
		func(o *networkingv1.Sidecar, now time.Time) []any {
			return []any{o.Name, age(o.CreationTimestamp, now)}
		})
	m[sec("PeerAuthentication")] = typed([]metav1.TableColumnDefinition{
		nameColumn(),
		column("Mode", "string", "Defines the mTLS mode used for peer authentication."),
		crdAgeColumn(),
	}, func(o *securityv1.PeerAuthentication, now time.Time) []any {
		mode := ""
		if o.Spec.Mtls != nil {
			mode = o.Spec.Mtls.Mode.String()
		}
		return []any{o.Name, mode, age(o.CreationTimestamp, now)}
	})
	m[sec("AuthorizationPolicy")] = typed([]metav1.TableColumnDefinition{
		nameColumn(),
		column("Action", "string", "The operation to take."),
		crdAgeColumn(),
	}, func(o *securityv1.AuthorizationPolicy, now time.Time) []any {
		return []any{o.Name, o.Spec.Action.String(), age(o.CreationTimestamp, now)}
	})
	m[sec("RequestAuthentication")] = typed([]metav1.TableColumnDefinition{nameColumn(), crdAgeColumn()},
		func(o *securityv1.RequestAuthentication, now time.Time) []any {
			return []any{o.Name, age(o.CreationTimestamp, now)}
		})
}

// crdAgeColumn is the Age column of a CRD's printer columns.
func crdAgeColumn() metav1.TableColumnDefinition {
	return column("Age", "date", objectMetaDoc["creationTimestamp"])
}

// jsonList is a list column's cell: the list as JSON, empty when empty.
func jsonList(items []string) string {
	if len(items) == 0 {
		return ""
	}
	b, _ := json.Marshal(items) // strings always encode
	return string(b)
}
