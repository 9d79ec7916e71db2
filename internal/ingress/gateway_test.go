package ingress_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"testing"
	"time"

	networkingapi "istio.io/api/networking/v1alpha3"
	istionetv1 "istio.io/client-go/pkg/apis/networking/v1"
	istioclient "istio.io/client-go/pkg/clientset/versioned"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/utils/ptr"

	"skiff.dev/skiff/internal/ingress"
	"skiff.dev/skiff/internal/mesh/control"
	"skiff.dev/skiff/internal/testenv"
)

// TestIstioGatewayEndToEnd serves an Ingress and an Istio Gateway with
// its VirtualService from one edge proxy, against a real API server:
// the Gateway's port 80 joins the Ingress listener (Ingress rules keep
// their hosts), its HTTPS port 8443 is a listener of its own with the
// Secret's certificate, and routes follow VirtualService changes.
func TestIstioGatewayEndToEnd(t *testing.T) {
	fakeInternet(t)
	env := testenv.Start(t, testenv.WithoutControllers)
	c := env.Client
	ic, err := istioclient.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	const ns = "default"

	ui := backendAt(t, backendIPs[0], "ui")
	v1 := backendAt(t, backendIPs[1], "reviews-v1")
	v2 := backendAt(t, backendIPs[2], "reviews-v2")
	service(t, c, ns, "ui", corev1.ServicePort{Name: "http", Port: 80}, ui)
	service(t, c, ns, "reviews-v1", corev1.ServicePort{Name: "http", Port: 9080}, v1)
	service(t, c, ns, "reviews-v2", corev1.ServicePort{Name: "http", Port: 9080}, v2)

	if _, err := c.NetworkingV1().Ingresses(ns).Create(ctx, &networkingv1.Ingress{
		ObjectMeta: metav1.ObjectMeta{Name: "shop"},
		Spec: networkingv1.IngressSpec{IngressClassName: ptr.To("skiff"), Rules: []networkingv1.IngressRule{
			rule("shop.example.com", prefix("/", "ui", num(80))),
		}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := ingress.EnsureIngressClass(ctx, c); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "istio-system"}},
		metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, cert := selfSigned(t, "reviews.example.com")
	if _, err := c.CoreV1().Secrets("istio-system").Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "reviews-cert"}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	factory := informers.NewSharedInformerFactory(c, 0)
	gw := control.NewGatewayWatcher(ic, factory, testenv.Logger(t), control.GatewayWatcherOptions{
		// Port 80 is the Ingress listener's (a fixed port: this test has
		// a network namespace of its own).
		Gateway: control.GatewayOptions{Addresses: map[uint32]string{8443: "127.0.0.1:0"}},
	})
	ctrl := ingress.New(c, factory, testenv.Logger(t), ingress.Options{
		HTTPAddr: "127.0.0.1:80", HTTPSAddr: "127.0.0.1:0", NodeName: "node-1", StatusAddresses: []string{"192.0.2.1"},
		Gateway: gw,
	})
	testenv.Run(t, "gateway watcher", gw.Run)
	testenv.Run(t, "ingress controller", func(ctx context.Context) error {
		factory.Start(ctx.Done())
		defer factory.Shutdown()
		return ctrl.Run(ctx)
	})

	// The Gateway and VirtualService arrive after the edge proxy runs.
	// The Gateway in the application's namespace, its Secret beside the
	// gateway workload (istio-system), as Istio has them.
	if _, err := ic.NetworkingV1().Gateways(ns).Create(ctx, &istionetv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Name: "ingress"},
		Spec: networkingapi.Gateway{
			Selector: map[string]string{"istio": "ingressgateway"},
			Servers: []*networkingapi.Server{
				{Port: &networkingapi.Port{Number: 80, Name: "http", Protocol: "HTTP"}, Hosts: []string{"*"}},
				{Port: &networkingapi.Port{Number: 8443, Name: "https", Protocol: "HTTPS"}, Hosts: []string{"reviews.example.com"},
					Tls: &networkingapi.ServerTLSSettings{Mode: networkingapi.ServerTLSSettings_SIMPLE, CredentialName: "reviews-cert"}},
			},
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	vs := &istionetv1.VirtualService{
		ObjectMeta: metav1.ObjectMeta{Name: "reviews"},
		Spec: networkingapi.VirtualService{
			Hosts:    []string{"reviews.example.com", "shop.example.com"},
			Gateways: []string{"ingress"},
			Http: []*networkingapi.HTTPRoute{{
				Match: []*networkingapi.HTTPMatchRequest{{Uri: &networkingapi.StringMatch{MatchType: &networkingapi.StringMatch_Prefix{Prefix: "/reviews"}}}},
				Route: []*networkingapi.HTTPRouteDestination{{Destination: &networkingapi.Destination{Host: "reviews-v1"}}},
			}},
		},
	}
	if vs, err = ic.NetworkingV1().VirtualServices(ns).Create(ctx, vs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	client := &http.Client{Timeout: 5 * time.Second}
	var base string
	testenv.Eventually(t, "the Gateway's route answers on the Ingress port", func(context.Context) (bool, error) {
		a := ctrl.Addr(ingress.ListenerHTTP)
		if a == nil {
			return false, nil
		}
		base = "http://" + a.String()
		code, body, err := fetch(client, base+"/reviews/1", "reviews.example.com")
		return code == 200 && body == "reviews-v1 /reviews/1", err
	})
	for _, tc := range []struct {
		path, host string
		code       int
		body       string
	}{
		{"/", "shop.example.com", 200, "ui /"},               // the Ingress keeps its host
		{"/reviews", "shop.example.com", 200, "ui /reviews"}, // ... with all of its paths
		{"/other", "reviews.example.com", 404, ""},
	} {
		code, body, err := fetch(client, base+tc.path, tc.host)
		if err != nil || code != tc.code || (tc.body != "" && body != tc.body) {
			t.Errorf("GET %s%s: %d %q %v, want %d %q", tc.host, tc.path, code, body, err, tc.code, tc.body)
		}
	}

	// HTTPS on the Gateway's own port, with the Secret's certificate.
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	tlsClient := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "reviews.example.com"}}}
	var httpsBase string
	testenv.Eventually(t, "the Gateway's HTTPS port", func(context.Context) (bool, error) {
		a := ctrl.Addr(control.GatewayListenerName(8443))
		if a == nil {
			return false, nil
		}
		httpsBase = "https://" + a.String()
		code, body, err := fetch(tlsClient, httpsBase+"/reviews", "reviews.example.com")
		return code == 200 && body == "reviews-v1 /reviews", err
	})

	// A VirtualService change reaches the proxy.
	vs.Spec.Http[0].Route[0].Destination.Host = "reviews-v2"
	if _, err := ic.NetworkingV1().VirtualServices(ns).Update(ctx, vs, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, "the route follows the VirtualService", func(context.Context) (bool, error) {
		code, body, err := fetch(client, base+"/reviews", "reviews.example.com")
		return code == 200 && body == "reviews-v2 /reviews", err
	})
}
