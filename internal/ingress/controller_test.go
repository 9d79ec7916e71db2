package ingress_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	"github.com/vishvananda/netlink"

	"skiff.dev/skiff/internal/ingress"
	"skiff.dev/skiff/internal/runtime/runtimetest"
	"skiff.dev/skiff/internal/testenv"
)

// The API server rejects loopback addresses in EndpointSlices (as
// upstream's does), so the backends live on addresses of the "fake
// internet" 198.51.100.0/24, put on lo of the network namespace this test
// binary runs in as root (the host's network is not touched).
func TestMain(m *testing.M) { runtimetest.MainInNetNS(m) }

// backendIPs are the backends' addresses.
var backendIPs = []string{"198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.4"}

// fakeInternet brings lo up and gives it backendIPs, in the test's own
// network namespace; it skips the test elsewhere.
func fakeInternet(t *testing.T) {
	t.Helper()
	if !runtimetest.InNetNS() {
		t.Skip("needs root: runs in a network namespace of its own, where lo gets addresses from 198.51.100.0/24")
	}
	lo, err := netlink.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := netlink.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	for _, ip := range backendIPs {
		addr, err := netlink.ParseAddr(ip + "/32")
		if err != nil {
			t.Fatal(err)
		}
		if err := netlink.AddrReplace(lo, addr); err != nil {
			t.Fatal(err)
		}
	}
}

// backendAt is an HTTP server on one of backendIPs that
// answers with its name and the path it got.
func backendAt(t *testing.T, ip, name string) *httptest.Server {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s %s", name, r.URL.Path)
	}))
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

func hostPort(t *testing.T, srv *httptest.Server) (string, int32) {
	t.Helper()
	a := srv.Listener.Addr().(*net.TCPAddr)
	return a.IP.String(), int32(a.Port)
}

// service makes a selector-less Service and its EndpointSlice pointing at
// srv, the way the endpoints controller would for pods.
func service(t *testing.T, c kubernetes.Interface, ns, name string, port corev1.ServicePort, srv *httptest.Server) {
	t.Helper()
	ctx := t.Context()
	if _, err := c.CoreV1().Services(ns).Create(ctx, &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{port}},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	setEndpoints(t, c, ns, name, port.Name, srv)
}

// setEndpoints creates or replaces the Service's one slice.
func setEndpoints(t *testing.T, c kubernetes.Interface, ns, svc, portName string, srv *httptest.Server) {
	t.Helper()
	ip, port := hostPort(t, srv)
	slice := &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: svc + "-1", Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To(portName), Port: ptr.To(port), Protocol: ptr.To(corev1.ProtocolTCP)}},
		Endpoints: []discoveryv1.Endpoint{
			{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}},
			{Addresses: []string{"198.51.100.99"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(false)}},
		},
	}
	slices := c.DiscoveryV1().EndpointSlices(ns)
	old, err := slices.Get(t.Context(), slice.Name, metav1.GetOptions{})
	if err == nil {
		slice.ResourceVersion = old.ResourceVersion
		_, err = slices.Update(t.Context(), slice, metav1.UpdateOptions{})
	} else {
		_, err = slices.Create(t.Context(), slice, metav1.CreateOptions{})
	}
	if err != nil {
		t.Fatal(err)
	}
}

func prefix(path, svc string, port networkingv1.ServiceBackendPort) networkingv1.HTTPIngressPath {
	return networkingv1.HTTPIngressPath{Path: path, PathType: ptr.To(networkingv1.PathTypePrefix),
		Backend: networkingv1.IngressBackend{Service: &networkingv1.IngressServiceBackend{Name: svc, Port: port}}}
}

func rule(host string, paths ...networkingv1.HTTPIngressPath) networkingv1.IngressRule {
	return networkingv1.IngressRule{Host: host, IngressRuleValue: networkingv1.IngressRuleValue{
		HTTP: &networkingv1.HTTPIngressRuleValue{Paths: paths}}}
}

func num(n int32) networkingv1.ServiceBackendPort { return networkingv1.ServiceBackendPort{Number: n} }

func named(s string) networkingv1.ServiceBackendPort { return networkingv1.ServiceBackendPort{Name: s} }

// fetch GETs url with Host host and returns status and body.
func fetch(c *http.Client, url, host string) (int, string, error) {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return 0, "", err
	}
	req.Host = host
	res, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, string(b), err
}

func TestIngressEndToEnd(t *testing.T) {
	fakeInternet(t)
	env := testenv.Start(t, testenv.WithoutControllers)
	c := env.Client
	ctx := t.Context()
	const ns = "default"

	if err := ingress.EnsureIngressClass(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := ingress.EnsureIngressClass(ctx, c); err != nil {
		t.Fatalf("second EnsureIngressClass: %v", err)
	}
	ic, err := c.NetworkingV1().IngressClasses().Get(ctx, "skiff", metav1.GetOptions{})
	if err != nil || ic.Spec.Controller != "skiff.dev/ingress" || ic.Annotations[ingress.AnnotationDefaultClass] != "true" {
		t.Fatalf("ingress class: %+v, %v", ic, err)
	}

	// The workshop's three services, on three loopback addresses.
	ui := backendAt(t, backendIPs[0], "ui")
	product := backendAt(t, backendIPs[1], "productms")
	review := backendAt(t, backendIPs[2], "productreviewms")
	service(t, c, ns, "ui", corev1.ServicePort{Port: 80}, ui)
	service(t, c, ns, "productms", corev1.ServicePort{Name: "http", Port: 80}, product)
	service(t, c, ns, "productreviewms", corev1.ServicePort{Name: "web", Port: 8080}, review)

	// A node, for the status address (status is set after create, as
	// the node agent does).
	node, err := c.CoreV1().Nodes().Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "node-1"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	node.Status = corev1.NodeStatus{
		Addresses:  []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "192.0.2.10"}},
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
	}
	if _, err := c.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}

	// TLS material for secure.example.com.
	certPEM, keyPEM, cert := selfSigned(t, "secure.example.com")
	if _, err := c.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "secure-tls"}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: certPEM, corev1.TLSPrivateKeyKey: keyPEM},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}

	ingresses := []*networkingv1.Ingress{
		{ // no class: the default class (skiff) takes it
			ObjectMeta: metav1.ObjectMeta{Name: "shop"},
			Spec: networkingv1.IngressSpec{Rules: []networkingv1.IngressRule{rule("",
				prefix("/ui", "ui", num(80)),
				prefix("/productms", "productms", named("http")),
				prefix("/productreviewms", "productreviewms", num(8080)),
				prefix("/missing", "nothere", num(80)),
			)}},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Name: "hosts"},
			Spec: networkingv1.IngressSpec{IngressClassName: ptr.To("skiff"), Rules: []networkingv1.IngressRule{
				rule("a.example.com", prefix("/", "ui", num(80))),
				rule("b.example.com", prefix("/", "productms", named("http"))),
			}},
		},
		{
			ObjectMeta: metav1.ObjectMeta{Name: "secure"},
			Spec: networkingv1.IngressSpec{
				TLS:   []networkingv1.IngressTLS{{Hosts: []string{"secure.example.com"}, SecretName: "secure-tls"}},
				Rules: []networkingv1.IngressRule{rule("secure.example.com", prefix("/", "productreviewms", named("web")))},
			},
		},
		{ // another controller's: not served
			ObjectMeta: metav1.ObjectMeta{Name: "not-ours"},
			Spec: networkingv1.IngressSpec{IngressClassName: ptr.To("nginx"), Rules: []networkingv1.IngressRule{
				rule("other.example.com", prefix("/", "ui", num(80))),
			}},
		},
	}
	for _, ing := range ingresses {
		if _, err := c.NetworkingV1().Ingresses(ns).Create(ctx, ing, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}

	access := &syncBuffer{}
	factory := informers.NewSharedInformerFactory(c, 0)
	ctrl := ingress.New(c, factory, testenv.Logger(t), ingress.Options{
		HTTPAddr: "127.0.0.1:0", HTTPSAddr: "127.0.0.1:0", NodeName: "node-1", AccessLog: access})
	testenv.Run(t, "ingress controller", func(ctx context.Context) error {
		factory.Start(ctx.Done())
		defer factory.Shutdown()
		return ctrl.Run(ctx)
	})

	client := &http.Client{Timeout: 5 * time.Second}
	var base string
	testenv.Eventually(t, "the workshop's /ui answers", func(context.Context) (bool, error) {
		a := ctrl.Addr(ingress.ListenerHTTP)
		if a == nil {
			return false, nil
		}
		base = "http://" + a.String()
		code, body, err := fetch(client, base+"/ui", "shop.test")
		return code == 200 && body == "ui /ui", err
	})

	for _, tc := range []struct {
		path, host string
		code       int
		body       string
	}{
		{"/ui/index.html", "shop.test", 200, "ui /ui/index.html"},
		{"/productms/products", "shop.test", 200, "productms /productms/products"},
		{"/productreviewms", "shop.test", 200, "productreviewms /productreviewms"},
		{"/productmsx", "shop.test", 404, ""},
		{"/missing/x", "shop.test", 503, "no healthy upstream\n"},
		{"/anything", "a.example.com", 200, "ui /anything"},
		{"/", "b.example.com", 200, "productms /"},
		{"/", "other.example.com", 404, ""},
	} {
		code, body, err := fetch(client, base+tc.path, tc.host)
		if err != nil || code != tc.code || (tc.body != "" && body != tc.body) {
			t.Errorf("GET %s%s: %d %q %v, want %d %q", tc.host, tc.path, code, body, err, tc.code, tc.body)
		}
	}

	// TLS: SNI picks the Secret's certificate, checked by a verifying
	// client; other names get the default certificate.
	httpsAddr := ctrl.Addr(ingress.ListenerHTTPS).String()
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	tlsClient := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "secure.example.com"}, ForceAttemptHTTP2: true}}
	code, body, err := fetch(tlsClient, "https://"+httpsAddr+"/reviews", "secure.example.com")
	if err != nil || code != 200 || body != "productreviewms /reviews" {
		t.Errorf("https secure.example.com: %d %q %v", code, body, err)
	}
	conn, err := tls.Dial("tcp", httpsAddr, &tls.Config{ServerName: "unknown.example.com", InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	if cn := conn.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "Skiff Ingress Default Certificate" {
		t.Errorf("unknown name got certificate %q, want the default", cn)
	}
	conn.Close()

	// The missing Service is reported on the Ingress.
	testenv.Eventually(t, "a ServiceNotFound event on shop", func(ctx context.Context) (bool, error) {
		evs, err := c.CoreV1().Events(ns).List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=shop"})
		if err != nil {
			return false, err
		}
		for _, e := range evs.Items {
			if e.Reason == ingress.ReasonServiceNotFound && e.Type == corev1.EventTypeWarning &&
				strings.Contains(e.Message, `"default/nothere"`) {
				return true, nil
			}
		}
		return false, nil
	})

	// Status: the node's address, on ours only.
	testenv.Eventually(t, "status.loadBalancer of shop", func(ctx context.Context) (bool, error) {
		ing, err := c.NetworkingV1().Ingresses(ns).Get(ctx, "shop", metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		lb := ing.Status.LoadBalancer.Ingress
		return len(lb) == 1 && lb[0].IP == "192.0.2.10", nil
	})
	if ing, _ := c.NetworkingV1().Ingresses(ns).Get(ctx, "not-ours", metav1.GetOptions{}); len(ing.Status.LoadBalancer.Ingress) != 0 {
		t.Errorf("status written on another controller's Ingress: %v", ing.Status.LoadBalancer)
	}

	// An endpoint change reaches the proxy.
	moved := backendAt(t, backendIPs[3], "productms-moved")
	setEndpoints(t, c, ns, "productms", "http", moved)
	testenv.Eventually(t, "productms moved", func(context.Context) (bool, error) {
		code, body, err := fetch(client, base+"/productms", "shop.test")
		return code == 200 && body == "productms-moved /productms", err
	})

	// The missing Service appears: its path starts working.
	service(t, c, ns, "nothere", corev1.ServicePort{Port: 80}, ui)
	testenv.Eventually(t, "/missing answers once its Service exists", func(context.Context) (bool, error) {
		code, body, err := fetch(client, base+"/missing", "shop.test")
		return code == 200 && body == "ui /missing", err
	})

	if !strings.Contains(access.String(), `"GET /missing/x HTTP/1.1" 503 UH`) {
		t.Errorf("access log lacks the 503 UH line:\n%s", access.String())
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func selfSigned(t *testing.T, name string) (certPEM, keyPEM []byte, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	cert, _ = x509.ParseCertificate(der)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), cert
}
