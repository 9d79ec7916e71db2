package istiosubsets

import (
	"encoding/json"
	"strings"
	"testing"

	networkingapi "istio.io/api/networking/v1alpha3"
	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestSubsets(t *testing.T) {
	var vs networkingapi.VirtualService
	if err := json.Unmarshal([]byte(`{"hosts":["reviews"],"http":[
		{"route":[{"destination":{"host":"reviews","subset":"v1"}},{"destination":{"host":"reviews"}}],"mirror":{"host":"m","subset":"s"}},
		{"route":[{"destination":{"host":"ratings","subset":"v2"}}]}],
		"tcp":[{"route":[{"destination":{"host":"db","subset":"primary"}}]}]}`), &vs); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range Subsets(&vs) {
		got = append(got, r.Path.String()+"="+r.Host+"/"+r.Subset)
	}
	want := "spec.http[0].route[0].destination.subset=reviews/v1 spec.http[0].mirror.subset=m/s spec.http[1].route[0].destination.subset=ratings/v2 spec.tcp[0].route[0].destination.subset=db/primary"
	if strings.Join(got, " ") != want {
		t.Errorf("subsets\n got %s\nwant %s", strings.Join(got, " "), want)
	}
}

func TestDefined(t *testing.T) {
	dr := func(ns, host string, subsets ...string) *networkingv1.DestinationRule {
		d := &networkingv1.DestinationRule{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: host}}
		d.Spec.Host = host
		for _, s := range subsets {
			d.Spec.Subsets = append(d.Spec.Subsets, &networkingapi.Subset{Name: s})
		}
		return d
	}
	drs := []*networkingv1.DestinationRule{
		dr("default", "reviews", "v1", "v2"),
		dr("other", "ratings.other.svc.cluster.local", "v1"),
		dr("ext", "*.example.com", "eu"),
	}
	for _, tc := range []struct {
		host, ns, subset string
		want             bool
	}{
		{"reviews", "default", "v1", true},
		{"reviews.default.svc.cluster.local", "x", "v2", true},
		{"reviews", "default", "v3", false},
		{"reviews", "elsewhere", "v1", false},
		{"ratings.other.svc.cluster.local", "default", "v1", true},
		{"api.example.com", "default", "eu", true},
		{"api.example.org", "default", "eu", false},
	} {
		if got := Defined(drs, FQDN(tc.host, tc.ns), tc.subset); got != tc.want {
			t.Errorf("Defined(%s in %s, %s) = %v, want %v", tc.host, tc.ns, tc.subset, got, tc.want)
		}
	}
}
