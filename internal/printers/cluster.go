package printers

import (
	"fmt"
	"strings"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	nodev1 "k8s.io/api/node/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Node role labels: node-role.kubernetes.io/<role>="" and the older
// kubernetes.io/role=<role>.
const (
	nodeRolePrefix = "node-role.kubernetes.io/"
	nodeRoleLabel  = "kubernetes.io/role"
)

func addClusterPrinters(m map[schema.GroupKind]Printer) {
	m[schema.GroupKind{Kind: "Namespace"}] = typed([]metav1.TableColumnDefinition{
		nameColumn(),
		column("Status", "string", "The status of the namespace"),
		ageColumn(),
	}, func(ns *corev1.Namespace, now time.Time) []any {
		return []any{ns.Name, string(ns.Status.Phase), age(ns.CreationTimestamp, now)}
	})
	m[schema.GroupKind{Kind: "Node"}] = typed(nodeColumns(), nodeCells)
	m[schema.GroupKind{Kind: "Event"}] = typed(eventColumns(), eventCells)
	m[schema.GroupKind{Group: "coordination.k8s.io", Kind: "Lease"}] = typed([]metav1.TableColumnDefinition{
		nameColumn(),
		column("Holder", "string", coordinationv1.LeaseSpec{}.SwaggerDoc()["holderIdentity"]),
		ageColumn(),
	}, func(l *coordinationv1.Lease, now time.Time) []any {
		return []any{l.Name, stringOr(l.Spec.HolderIdentity, ""), age(l.CreationTimestamp, now)}
	})
	pc := schedulingv1.PriorityClass{}.SwaggerDoc()
	m[schema.GroupKind{Group: "scheduling.k8s.io", Kind: "PriorityClass"}] = typed([]metav1.TableColumnDefinition{
		nameColumn(),
		column("Value", "integer", pc["value"]),
		column("Global-Default", "boolean", pc["globalDefault"]),
		ageColumn(),
		// Not marked wide upstream, so kubectl shows it by default.
		column("PreemptionPolicy", "string", pc["preemptionPolicy"]),
	}, func(p *schedulingv1.PriorityClass, now time.Time) []any {
		var policy string
		if p.PreemptionPolicy != nil {
			policy = string(*p.PreemptionPolicy)
		}
		return []any{p.Name, int64(p.Value), p.GlobalDefault, age(p.CreationTimestamp, now), policy}
	})
	m[schema.GroupKind{Group: "node.k8s.io", Kind: "RuntimeClass"}] = typed([]metav1.TableColumnDefinition{
		nameColumn(),
		column("Handler", "string", nodev1.RuntimeClass{}.SwaggerDoc()["handler"]),
		ageColumn(),
	}, func(r *nodev1.RuntimeClass, now time.Time) []any {
		return []any{r.Name, r.Handler, age(r.CreationTimestamp, now)}
	})
}

func nodeColumns() []metav1.TableColumnDefinition {
	info, status := corev1.NodeSystemInfo{}.SwaggerDoc(), corev1.NodeStatus{}.SwaggerDoc()
	return []metav1.TableColumnDefinition{
		nameColumn(),
		column("Status", "string", "The status of the node"),
		column("Roles", "string", "The roles of the node"),
		ageColumn(),
		column("Version", "string", info["kubeletVersion"]),
		wide("Internal-IP", "string", status["addresses"]),
		wide("External-IP", "string", status["addresses"]),
		wide("OS-Image", "string", info["osImage"]),
		wide("Kernel-Version", "string", info["kernelVersion"]),
		wide("Container-Runtime", "string", info["containerRuntimeVersion"]),
	}
}

func nodeCells(n *corev1.Node, now time.Time) []any {
	// Only the Ready condition is shown: "Ready", "NotReady" or "Unknown"
	// when the node never reported it.
	status := []string{"Unknown"}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			status[0] = "NotReady"
			if c.Status == corev1.ConditionTrue {
				status[0] = "Ready"
			}
		}
	}
	if n.Spec.Unschedulable {
		status = append(status, "SchedulingDisabled")
	}

	var roles []string
	for k, v := range n.Labels {
		switch {
		case strings.HasPrefix(k, nodeRolePrefix):
			roles = append(roles, strings.TrimPrefix(k, nodeRolePrefix))
		case k == nodeRoleLabel:
			roles = append(roles, v)
		}
	}

	address := func(t corev1.NodeAddressType) string {
		for _, a := range n.Status.Addresses {
			if a.Type == t {
				return a.Address
			}
		}
		return "<none>"
	}
	unknown := func(s string) string {
		if s == "" {
			return "<unknown>"
		}
		return s
	}
	info := n.Status.NodeInfo
	return []any{
		n.Name, strings.Join(status, ","), orNone(strings.Join(sortedUnique(roles), ",")),
		age(n.CreationTimestamp, now), info.KubeletVersion,
		address(corev1.NodeInternalIP), address(corev1.NodeExternalIP),
		unknown(info.OSImage), unknown(info.KernelVersion), unknown(info.ContainerRuntimeVersion),
	}
}

func eventColumns() []metav1.TableColumnDefinition {
	ev := corev1.Event{}.SwaggerDoc()
	name := nameColumn()
	name.Priority = 1
	return []metav1.TableColumnDefinition{
		column("Last Seen", "string", ev["lastTimestamp"]),
		column("Type", "string", ev["type"]),
		column("Reason", "string", ev["reason"]),
		column("Object", "string", ev["involvedObject"]),
		wide("Subobject", "string", corev1.ObjectReference{}.SwaggerDoc()["fieldPath"]),
		wide("Source", "string", ev["source"]),
		column("Message", "string", ev["message"]),
		wide("First Seen", "string", ev["firstTimestamp"]),
		wide("Count", "string", ev["count"]),
		name,
	}
}

// eventCells accepts both the old (firstTimestamp, count) and the new
// (eventTime, series) ways of recording when and how often.
func eventCells(e *corev1.Event, now time.Time) []any {
	first := age(e.FirstTimestamp, now)
	if e.FirstTimestamp.IsZero() {
		first = microAge(e.EventTime, now)
	}
	last := age(e.LastTimestamp, now)
	if e.LastTimestamp.IsZero() {
		last = first
	}
	count := e.Count
	if e.Series != nil {
		last = microAge(e.Series.LastObservedTime, now)
		count = e.Series.Count
	} else if count == 0 {
		count = 1 // singleton events of the new API carry no count
	}

	object := strings.ToLower(e.InvolvedObject.Kind)
	if e.InvolvedObject.Name != "" {
		object = fmt.Sprintf("%s/%s", object, e.InvolvedObject.Name)
	}

	component, instance := e.Source.Component, e.Source.Host
	if component == "" {
		component = e.ReportingController
	}
	if instance == "" {
		instance = e.ReportingInstance
	}
	source := component
	if instance != "" {
		source += ", " + instance
	}

	return []any{
		last, e.Type, e.Reason, object, e.InvolvedObject.FieldPath, source,
		strings.TrimSpace(e.Message), first, int64(count), e.Name,
	}
}
