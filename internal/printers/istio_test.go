package printers

import (
	"reflect"
	"strings"
	"testing"
	"time"

	networkingapi "istio.io/api/networking/v1alpha3"
	securityapi "istio.io/api/security/v1beta1"
	istionetworkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	istiosecurityv1 "istio.io/client-go/pkg/apis/security/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

func TestIstioCells(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	meta := metav1.ObjectMeta{Name: "x", CreationTimestamp: metav1.NewTime(now.Add(-90 * time.Second))}
	vs := &istionetworkingv1.VirtualService{ObjectMeta: meta}
	vs.Spec.Hosts = []string{"reviews", "ratings"}
	gwVS := &istionetworkingv1.VirtualService{ObjectMeta: meta}
	gwVS.Spec.Hosts, gwVS.Spec.Gateways = []string{"*"}, []string{"bookinfo-gateway"}
	dr := &istionetworkingv1.DestinationRule{ObjectMeta: meta}
	dr.Spec.Host = "reviews"
	se := &istionetworkingv1.ServiceEntry{ObjectMeta: meta}
	se.Spec.Hosts, se.Spec.Resolution = []string{"httpbin.org"}, networkingapi.ServiceEntry_DNS
	pa := &istiosecurityv1.PeerAuthentication{ObjectMeta: meta}
	pa.Spec.Mtls = &securityapi.PeerAuthentication_MutualTLS{Mode: securityapi.PeerAuthentication_MutualTLS_STRICT}
	ap := &istiosecurityv1.AuthorizationPolicy{ObjectMeta: meta}
	ap.Spec.Action = securityapi.AuthorizationPolicy_DENY
	for _, tc := range []struct {
		name string
		obj  runtime.Object
		want []any
	}{
		{"vs mesh", vs, []any{"x", "", `["reviews","ratings"]`, "90s"}},
		{"vs gateway", gwVS, []any{"x", `["bookinfo-gateway"]`, `["*"]`, "90s"}},
		{"dr", dr, []any{"x", "reviews", "90s"}},
		{"dr without host", &istionetworkingv1.DestinationRule{ObjectMeta: meta}, []any{"x", "", "90s"}},
		{"gateway", &istionetworkingv1.Gateway{ObjectMeta: meta}, []any{"x", "90s"}},
		{"se", se, []any{"x", `["httpbin.org"]`, "MESH_EXTERNAL", "DNS", "90s"}},
		{"sidecar", &istionetworkingv1.Sidecar{ObjectMeta: meta}, []any{"x", "90s"}},
		{"pa", pa, []any{"x", "STRICT", "90s"}},
		{"pa without mtls", &istiosecurityv1.PeerAuthentication{ObjectMeta: meta}, []any{"x", "", "90s"}},
		{"ap", ap, []any{"x", "DENY", "90s"}},
		{"ap default action", &istiosecurityv1.AuthorizationPolicy{ObjectMeta: meta}, []any{"x", "ALLOW", "90s"}},
		{"ra", &istiosecurityv1.RequestAuthentication{ObjectMeta: meta}, []any{"x", "90s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kind := reflect.TypeOf(tc.obj).Elem().Name()
			group := "networking.istio.io"
			if strings.HasSuffix(reflect.TypeOf(tc.obj).Elem().PkgPath(), "security/v1") {
				group = "security.istio.io"
			}
			cells, err := For(gk(group, kind)).Cells(tc.obj, now)
			if err != nil {
				t.Fatal(err)
			}
			if len(cells) != len(tc.want) {
				t.Fatalf("cells %q, want %q", cells, tc.want)
			}
			for i := range cells {
				if cells[i] != tc.want[i] {
					t.Errorf("cell %d = %#v, want %#v", i, cells[i], tc.want[i])
				}
			}
		})
	}
}
