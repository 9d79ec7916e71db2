package proxy

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
)

// world is the Services and slices of several golden inputs together.
func world(t *testing.T, files ...string) objects {
	t.Helper()
	var o objects
	for _, f := range files {
		x := loadObjects(t, filepath.Join("testdata", f+".yaml"))
		o.services = append(o.services, x.services...)
		o.slices = append(o.slices, x.slices...)
	}
	return o
}

func (o objects) service(ns, name string) *corev1.Service {
	for _, s := range o.services {
		if s.Namespace == ns && s.Name == name {
			return s
		}
	}
	return nil
}

func (o objects) slice(ns, name string) *discoveryv1.EndpointSlice {
	for _, s := range o.slices {
		if s.Namespace == ns && s.Name == name {
			return s
		}
	}
	return nil
}

func (o *objects) deleteService(ns, name string) {
	for i, s := range o.services {
		if s.Namespace == ns && s.Name == name {
			o.services = append(o.services[:i], o.services[i+1:]...)
			return
		}
	}
}

// updateCases change one Service (or its slices) of the world; each has
// the plan it must produce in testdata/update-<name>.golden.
var updateCases = []struct {
	name    string
	service types.NamespacedName
	change  func(o *objects)
}{
	{"unchanged", nn("default", "hello"), func(o *objects) {}},
	{"scale-down", nn("default", "hello"), func(o *objects) {
		sl := o.slice("default", "hello-abcde")
		sl.Endpoints = sl.Endpoints[1:] // 10.244.0.7 goes
	}},
	{"scale-up", nn("default", "hello"), func(o *objects) {
		sl := o.slice("default", "hello-abcde")
		ready := true
		sl.Endpoints = append(sl.Endpoints, discoveryv1.Endpoint{Addresses: []string{"10.244.0.9"},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready}})
	}},
	{"no-endpoints-left", nn("default", "hello"), func(o *objects) {
		o.slice("default", "hello-abcde").Endpoints = nil
	}},
	{"affinity-on", nn("default", "hello"), func(o *objects) {
		o.service("default", "hello").Spec.SessionAffinity = corev1.ServiceAffinityClientIP
	}},
	{"delete-service", nn("default", "hello"), func(o *objects) { o.deleteService("default", "hello") }},
	{"shared-ip-handover", nn("default", "a"), func(o *objects) { o.deleteService("default", "a") }},
}

func nn(ns, name string) types.NamespacedName { return types.NamespacedName{Namespace: ns, Name: name} }

// TestUpdatePlans checks that a change to one Service plans changes to
// its own chains, sets and elements only (the other Services of the
// world stay out of the plan), and what they are.
func TestUpdatePlans(t *testing.T) {
	for _, tc := range updateCases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := goldenConfig()
			o := world(t, "clusterip", "affinity", "nodeport-local", "shared-external-ip")
			st := full(cfg, o.translateAll(cfg), nil, nil, time.Time{}).next
			tc.change(&o)
			after := o.translateAll(cfg)
			pl := st.update(map[types.NamespacedName]*serviceRules{tc.service: after[tc.service]}, time.Time{})
			text := pl.String()
			for _, other := range []string{"sticky", "local", "elsewhere", "hello", "/a/", "/b/"} {
				if strings.Contains(tc.service.Name, strings.Trim(other, "/")) {
					continue
				}
				if other == "/b/" && tc.name == "shared-ip-handover" {
					continue // b takes over the address a held
				}
				if strings.Contains(text, other) {
					t.Errorf("the plan touches %s:\n%s", other, text)
				}
			}
			checkGolden(t, filepath.Join("testdata", "update-"+tc.name+".golden"), []byte(text))

			// Once committed, the state is the one a full sync makes.
			st.commit(pl)
			want := full(cfg, after, nil, nil, time.Time{}).next
			if !sameState(st, want) {
				var got, exp bytes.Buffer
				render(&got, cfg, st.services, false)
				render(&exp, cfg, want.services, false)
				t.Errorf("state after the update differs from a full sync:\n%s\nwant:\n%s", got.String(), exp.String())
			}
		})
	}
}

// sameState compares what two states say the kernel holds.
func sameState(a, b *state) bool {
	if len(a.chains) != len(b.chains) || len(a.sets) != len(b.sets) || len(a.elems) != len(b.elems) {
		return false
	}
	for k, v := range a.chains {
		if b.chains[k] != v {
			return false
		}
	}
	for k := range a.sets {
		if !b.sets[k] {
			return false
		}
	}
	for k, v := range a.elems {
		if w, ok := b.elems[k]; !ok || w != v {
			return false
		}
	}
	return true
}
