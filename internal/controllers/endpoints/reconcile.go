package endpoints

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// group is the endpoints of one address type that share one set of ports.
type group struct {
	addrType  discoveryv1.AddressType
	ports     []discoveryv1.EndpointPort
	endpoints []discoveryv1.Endpoint
}

// groupKey identifies a group: address type and ports.
func groupKey(t discoveryv1.AddressType, ports []discoveryv1.EndpointPort) string {
	parts := make([]string, 0, len(ports)+1)
	parts = append(parts, string(t))
	for _, p := range ports {
		parts = append(parts, fmt.Sprintf("%s/%d/%s/%s", ptr.Deref(p.Name, ""), ptr.Deref(p.Port, 0),
			ptr.Deref(p.Protocol, ""), ptr.Deref(p.AppProtocol, "")))
	}
	slices.Sort(parts[1:])
	return strings.Join(parts, ",")
}

// grouper collects endpoints into groups.
type grouper struct {
	groups map[string]*group
}

func newGrouper() *grouper { return &grouper{groups: map[string]*group{}} }

// add puts ep into the group of its address type and ports, unless an
// endpoint with the same address is there already.
func (g *grouper) add(t discoveryv1.AddressType, ports []discoveryv1.EndpointPort, ep discoveryv1.Endpoint) {
	k := groupKey(t, ports)
	gr := g.groups[k]
	if gr == nil {
		gr = &group{addrType: t, ports: ports}
		g.groups[k] = gr
	}
	if !slices.ContainsFunc(gr.endpoints, func(e discoveryv1.Endpoint) bool { return e.Addresses[0] == ep.Addresses[0] }) {
		gr.endpoints = append(gr.endpoints, ep)
	}
}

// sliceOwner is what the slices of one Service (or mirrored Endpoints)
// must carry.
type sliceOwner struct {
	key       string // namespace/service
	namespace string
	service   string
	managedBy string
	labels    map[string]string // complete, service-name and managed-by included
	// annotations, when not nil, are the complete annotations.
	annotations map[string]string
	owner       metav1.OwnerReference
	// placeholder keeps one empty slice of this address type while there
	// are no endpoints at all, as upstream does for Services.
	placeholder discoveryv1.AddressType
	// written records the writes.
	written *tracker
}

// existingSlices lists the slices one controller manages for a Service.
func (c *Controller) existingSlices(ns, service, managedBy string) ([]*discoveryv1.EndpointSlice, error) {
	return c.slices.EndpointSlices(ns).List(labelsOf(map[string]string{
		discoveryv1.LabelServiceName: service,
		discoveryv1.LabelManagedBy:   managedBy,
	}))
}

// reconcileSlices makes the owner's slices hold exactly the groups' endpoints.
// Endpoints stay in the slice that has them; new ones fill slices with
// room before new slices are made; slices left empty are deleted. Only
// slices whose content changes are written.
func (c *Controller) reconcileSlices(ctx context.Context, o sliceOwner, groups map[string]*group, existing []*discoveryv1.EndpointSlice) error {
	var (
		keep     []*discoveryv1.EndpointSlice // desired state of slices that stay
		create   []*discoveryv1.EndpointSlice
		remove   []*discoveryv1.EndpointSlice
		orig     = map[string]*discoveryv1.EndpointSlice{}
		bySetKey = map[string][]*discoveryv1.EndpointSlice{}
	)
	slices.SortFunc(existing, func(a, b *discoveryv1.EndpointSlice) int { return strings.Compare(a.Name, b.Name) })
	for _, s := range existing {
		orig[s.Name] = s
		k := groupKey(s.AddressType, s.Ports)
		bySetKey[k] = append(bySetKey[k], s)
	}
	total := 0
	for _, gr := range groups {
		total += len(gr.endpoints)
	}
	// Empty slices serve as the placeholder, or go.
	for k, list := range bySetKey {
		if _, ok := groups[k]; !ok {
			remove = append(remove, list...)
			delete(bySetKey, k)
		}
	}
	for _, k := range sortedKeys(groups) {
		gr := groups[k]
		want := map[string]discoveryv1.Endpoint{}
		for _, ep := range gr.endpoints {
			want[ep.Addresses[0]] = ep
		}
		var mine []*discoveryv1.EndpointSlice
		for _, s := range bySetKey[k] {
			next := s.DeepCopy()
			next.Ports = gr.ports
			next.Endpoints = nil
			for _, ep := range s.Endpoints {
				if len(ep.Addresses) == 0 {
					continue
				}
				if w, ok := want[ep.Addresses[0]]; ok {
					next.Endpoints = append(next.Endpoints, w)
					delete(want, ep.Addresses[0])
				}
			}
			mine = append(mine, next)
		}
		// Place the rest, in a stable order, into slices with room.
		var rest []discoveryv1.Endpoint
		for _, ep := range gr.endpoints {
			if _, ok := want[ep.Addresses[0]]; ok {
				rest = append(rest, ep)
			}
		}
		for _, s := range mine {
			n := min(c.maxPer-len(s.Endpoints), len(rest))
			if n > 0 {
				s.Endpoints = append(s.Endpoints, rest[:n]...)
				rest = rest[n:]
			}
		}
		for len(rest) > 0 {
			n := min(c.maxPer, len(rest))
			s := &discoveryv1.EndpointSlice{AddressType: gr.addrType, Ports: gr.ports, Endpoints: rest[:n]}
			rest = rest[n:]
			create = append(create, s)
		}
		for _, s := range mine {
			if len(s.Endpoints) == 0 {
				remove = append(remove, orig[s.Name])
			} else {
				keep = append(keep, s)
			}
		}
	}
	if total == 0 && o.placeholder != "" {
		// Keep (or make) one empty slice without ports.
		var ph *discoveryv1.EndpointSlice
		for i, s := range remove {
			if s.AddressType == o.placeholder && len(s.Endpoints) == 0 {
				ph = s.DeepCopy()
				ph.Ports = nil
				remove = slices.Delete(remove, i, i+1)
				break
			}
		}
		if ph == nil {
			for i, s := range remove {
				if s.AddressType == o.placeholder {
					ph = s.DeepCopy()
					ph.Ports, ph.Endpoints = nil, nil
					remove = slices.Delete(remove, i, i+1)
					break
				}
			}
		}
		if ph != nil {
			keep = append(keep, ph)
		} else {
			create = append(create, &discoveryv1.EndpointSlice{AddressType: o.placeholder})
		}
	}

	var errs []error
	for _, s := range remove {
		err := c.client.DiscoveryV1().EndpointSlices(s.Namespace).Delete(ctx, s.Name, metav1.DeleteOptions{
			Preconditions: &metav1.Preconditions{UID: &s.UID}})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete endpointslice %s/%s: %w", s.Namespace, s.Name, err))
			continue
		}
		o.written.deleted(o.key, s.Name)
	}
	for _, s := range keep {
		o.apply(s)
		old := orig[s.Name]
		if equality.Semantic.DeepEqual(old.Endpoints, s.Endpoints) && equality.Semantic.DeepEqual(old.Ports, s.Ports) &&
			equality.Semantic.DeepEqual(old.Labels, s.Labels) && equality.Semantic.DeepEqual(old.Annotations, s.Annotations) &&
			equality.Semantic.DeepEqual(old.OwnerReferences, s.OwnerReferences) {
			continue
		}
		out, err := c.client.DiscoveryV1().EndpointSlices(s.Namespace).Update(ctx, s, metav1.UpdateOptions{})
		if err != nil {
			errs = append(errs, fmt.Errorf("update endpointslice %s/%s: %w", s.Namespace, s.Name, err))
			continue
		}
		o.written.wrote(o.key, out.Name, out.ResourceVersion)
	}
	for _, s := range create {
		s.Namespace = o.namespace
		s.GenerateName = o.service + "-"
		o.apply(s)
		if s.Endpoints == nil {
			s.Endpoints = []discoveryv1.Endpoint{}
		}
		out, err := c.client.DiscoveryV1().EndpointSlices(o.namespace).Create(ctx, s, metav1.CreateOptions{})
		if err != nil {
			if apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause) {
				return nil
			}
			errs = append(errs, fmt.Errorf("create endpointslice for %s: %w", o.key, err))
			continue
		}
		o.written.wrote(o.key, out.Name, out.ResourceVersion)
	}
	return errors.Join(errs...)
}

// apply sets the owner's labels, annotations and owner reference on s.
func (o sliceOwner) apply(s *discoveryv1.EndpointSlice) {
	s.Labels = make(map[string]string, len(o.labels))
	for k, v := range o.labels {
		s.Labels[k] = v
	}
	if o.annotations != nil {
		s.Annotations = make(map[string]string, len(o.annotations))
		for k, v := range o.annotations {
			s.Annotations[k] = v
		}
	}
	s.OwnerReferences = []metav1.OwnerReference{o.owner}
}

func sortedKeys(groups map[string]*group) []string {
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// sortEndpoints orders endpoints by address, for a stable placement of new
// ones.
func sortEndpoints(eps []discoveryv1.Endpoint) {
	slices.SortFunc(eps, func(a, b discoveryv1.Endpoint) int { return cmp.Compare(a.Addresses[0], b.Addresses[0]) })
}

// sliceRVs maps slice names to resourceVersions, for the tracker.
func sliceRVs(list []*discoveryv1.EndpointSlice) map[string]string {
	m := make(map[string]string, len(list))
	for _, s := range list {
		m[s.Name] = s.ResourceVersion
	}
	return m
}
