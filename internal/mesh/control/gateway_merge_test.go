package control

import (
	"os"
	"slices"
	"strings"
	"testing"

	"skiff.dev/skiff/internal/mesh/proxy"
)

// ingressLike is a configuration shaped as internal/ingress makes it: one
// route table for ":80" and ":443", a default certificate.
func ingressLike(t *testing.T) *proxy.Config {
	data, err := os.ReadFile("testdata/gateway/https.yaml")
	if err != nil {
		t.Fatal(err)
	}
	crt, key := pemBlock(t, string(data), "CERTIFICATE"), pemBlock(t, string(data), "PRIVATE KEY")
	return &proxy.Config{
		Listeners: []proxy.Listener{
			{Name: "http", Address: ":80", RouteTable: "ingress"},
			{Name: "https", Address: ":443", RouteTable: "ingress", TLS: &proxy.ListenerTLS{Certificates: []string{"default"}, DefaultCertificate: "default"}},
		},
		RouteTables: []proxy.RouteTable{{Name: "ingress", SingleLabelWildcards: true, VirtualHosts: []proxy.VirtualHost{
			{Name: "shop.example.com", Domains: []string{"shop.example.com"}, Routes: []proxy.Route{{Clusters: []proxy.WeightedCluster{{Cluster: "shop/web:80"}}}}},
			{Name: "bookinfo.example.com", Domains: []string{"bookinfo.example.com"}, Routes: []proxy.Route{{DirectResponse: &proxy.DirectResponse{Status: 418}}}},
			{Name: "*", Domains: []string{"*"}, Routes: []proxy.Route{{DirectResponse: &proxy.DirectResponse{Status: 404}}}},
		}}},
		Clusters:     []proxy.Cluster{{Name: "shop/web:80", Endpoints: []proxy.Endpoint{{Address: "10.244.0.9:80"}}}},
		Certificates: []proxy.Certificate{{Name: "default", CertPEM: []byte(crt), KeyPEM: []byte(key)}},
	}
}

func TestMergeGateway(t *testing.T) {
	data, err := os.ReadFile("testdata/gateway/https.yaml")
	if err != nil {
		t.Fatal(err)
	}
	snap, in, gopts := loadGatewayCase(t, data)
	frag, _ := TranslateGateway(snap, in, MeshOptions{}, gopts)
	// A port of its own as well.
	frag.Listeners = append(frag.Listeners, proxy.Listener{Name: "gateway_8080", Address: "0.0.0.0:8080", RouteTable: "http.80"})

	base := ingressLike(t)
	before := len(base.RouteTables[0].VirtualHosts)
	got, warnings := MergeGateway(base, frag)
	if len(base.RouteTables) != 1 || len(base.RouteTables[0].VirtualHosts) != before || base.Listeners[0].RouteTable != "ingress" {
		t.Fatal("MergeGateway changed base")
	}
	if err := proxy.New(proxy.Options{}).Update(got); err != nil {
		t.Fatalf("the proxy rejects the merge: %v", err)
	}
	names := func(ls []proxy.Listener) (out []string) {
		for _, l := range ls {
			out = append(out, l.Name+"="+l.RouteTable)
		}
		return out
	}
	if want := []string{"http=ingress+http.80", "https=ingress+https.443", "gateway_8080=http.80"}; !slices.Equal(names(got.Listeners), want) {
		t.Errorf("listeners %v, want %v", names(got.Listeners), want)
	}
	table := func(name string) *proxy.RouteTable {
		for i := range got.RouteTables {
			if got.RouteTables[i].Name == name {
				return &got.RouteTables[i]
			}
		}
		t.Fatalf("no route table %s", name)
		return nil
	}
	domains := func(rt *proxy.RouteTable) (out []string) {
		for _, vh := range rt.VirtualHosts {
			out = append(out, strings.Join(vh.Domains, ","))
		}
		return out
	}
	// Ingress keeps bookinfo.example.com and "*"; the gateway adds what
	// Ingress does not serve.
	if want := []string{"shop.example.com", "bookinfo.example.com", "*", "secure.bookinfo.example.com"}; !slices.Equal(domains(table("ingress+https.443")), want) {
		t.Errorf("https domains %v, want %v", domains(table("ingress+https.443")), want)
	}
	if want := []string{"shop.example.com", "bookinfo.example.com", "*"}; !slices.Equal(domains(table("ingress+http.80")), want) {
		t.Errorf("http domains %v, want %v", domains(table("ingress+http.80")), want)
	}
	if c := got.Listeners[1].TLS; c.DefaultCertificate != "default" || !slices.Equal(c.Certificates,
		[]string{"default", "gateway/istio-system/bookinfo-cert", "gateway/istio-system/opaque-cert"}) {
		t.Errorf("https TLS %+v", c)
	}
	if !slices.ContainsFunc(warnings, func(w string) bool { return strings.Contains(w, "host bookinfo.example.com is already served") }) {
		t.Errorf("no warning about the shared host: %q", warnings)
	}

	// Nothing to merge: base as it is.
	same, w := MergeGateway(base, nil)
	if len(w) > 0 || !slices.Equal(names(same.Listeners), names(base.Listeners)) {
		t.Errorf("merge of nothing: %v %v", names(same.Listeners), w)
	}
}

func TestSamePort(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want bool
	}{
		{":80", "0.0.0.0:80", true},
		{"127.0.0.1:80", "0.0.0.0:80", true},
		{"127.0.0.1:80", "127.0.0.2:80", false},
		{":80", ":443", false},
		{"127.0.0.1:0", "127.0.0.1:0", false},
		{"bad", ":80", false},
	} {
		if got := samePort(tc.a, tc.b); got != tc.want {
			t.Errorf("samePort(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}
