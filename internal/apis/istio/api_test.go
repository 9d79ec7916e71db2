package istio_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	versioned "istio.io/client-go/pkg/clientset/versioned"
	istioinformers "istio.io/client-go/pkg/informers/externalversions"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/watch"

	"skiff.dev/skiff/internal/apis/istio"
	"skiff.dev/skiff/internal/testenv"
)

// cluster is a control plane with the embedded kubectl.
type cluster struct {
	env     *testenv.Env
	istio   versioned.Interface
	kubectl string
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	if testing.Short() {
		t.Skip("skipping: builds the skiff binary")
	}
	kubectl := filepath.Join(filepath.Dir(testenv.Binary(t)), "kubectl")
	env := testenv.Start(t, testenv.WithoutControllers)
	ic, err := istio.NewForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	return &cluster{env: env, istio: ic, kubectl: kubectl}
}

func (c *cluster) namespace(t *testing.T, name string) string {
	t.Helper()
	_, err := c.env.Client.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return name
}

// run runs kubectl in ns; it returns the combined output and the error.
func (c *cluster) run(t *testing.T, ns, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), c.kubectl, append([]string{"-n", ns}, args...)...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+c.env.Kubeconfig)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func (c *cluster) mustRun(t *testing.T, ns, stdin string, args ...string) string {
	t.Helper()
	out, err := c.run(t, ns, stdin, args...)
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func sample(t *testing.T, file, group, version string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	return strings.ReplaceAll(string(b), "apiVersion: "+group+"/v1\n", "apiVersion: "+group+"/"+version+"\n")
}

// rows returns kubectl get's output lines with runs of spaces collapsed.
func rows(out string) []string {
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		lines = append(lines, strings.Join(strings.Fields(l), " "))
	}
	return lines
}

func hasRow(t *testing.T, out string, re string) {
	t.Helper()
	rx := regexp.MustCompile(re)
	for _, l := range rows(out) {
		if rx.MatchString(l) {
			return
		}
	}
	t.Errorf("no row matches %q in:\n%s", re, out)
}

// TestKubectlApplyAllVersions applies the workshop's Istio YAML in every
// served version with the real kubectl and reads it back with kubectl get
// (printer columns, short names, categories) and Istio's typed clients
// in every version.
func TestKubectlApplyAllVersions(t *testing.T) {
	c := startCluster(t)
	ctx := t.Context()
	for _, v := range []string{"v1", "v1beta1", "v1alpha3"} {
		t.Run("networking/"+v, func(t *testing.T) {
			ns := c.namespace(t, "net-"+v)
			out := c.mustRun(t, ns, sample(t, "networking.yaml", istio.NetworkingGroup, v), "apply", "-f", "-")
			for _, want := range []string{
				"virtualservice.networking.istio.io/reviews created",
				"destinationrule.networking.istio.io/reviews created",
				"gateway.networking.istio.io/bookinfo-gateway created",
				"serviceentry.networking.istio.io/httpbin-ext created",
				"sidecar.networking.istio.io/default created",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("apply output lacks %q:\n%s", want, out)
				}
			}
			// Applying again changes nothing.
			out = c.mustRun(t, ns, sample(t, "networking.yaml", istio.NetworkingGroup, v), "apply", "-f", "-")
			if !strings.Contains(out, "virtualservice.networking.istio.io/reviews unchanged") {
				t.Errorf("second apply:\n%s", out)
			}

			get := c.mustRun(t, ns, "", "get", "vs,dr,gw,se")
			hasRow(t, get, `^NAME GATEWAYS HOSTS AGE$`)
			hasRow(t, get, `^virtualservice.networking.istio.io/reviews \["reviews"\] \d+s$`)
			hasRow(t, get, `^virtualservice.networking.istio.io/bookinfo \["bookinfo-gateway"\] \["\*"\] \d+s$`)
			hasRow(t, get, `^NAME HOST AGE$`)
			hasRow(t, get, `^destinationrule.networking.istio.io/reviews reviews \d+s$`)
			hasRow(t, get, `^NAME AGE$`)
			hasRow(t, get, `^gateway.networking.istio.io/bookinfo-gateway \d+s$`)
			hasRow(t, get, `^NAME HOSTS LOCATION RESOLUTION AGE$`)
			hasRow(t, get, `^serviceentry.networking.istio.io/httpbin-ext \["httpbin.example.com"\] MESH_EXTERNAL DNS \d+s$`)
			hasRow(t, c.mustRun(t, ns, "", "get", "sidecar"), `^default \d+s$`)
			hasRow(t, c.mustRun(t, ns, "", "get", "istio-io"), `^sidecar.networking.istio.io/default \d+s$`)
			hasRow(t, c.mustRun(t, ns, "", "get", "virtualservices."+v+".networking.istio.io", "reviews", "-o", "jsonpath={.apiVersion} {.spec.http[1].route[1].weight}"),
				`^networking.istio.io/`+v+` 20$`)

			// Every version's typed client reads what any version wrote.
			vs1, err := c.istio.NetworkingV1().VirtualServices(ns).Get(ctx, "reviews", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if h := vs1.Spec.Http; len(h) != 2 || h[0].Match[0].Headers["end-user"].GetExact() != "tester" ||
				h[0].Route[0].Destination.Subset != "v2" || h[1].Route[0].Weight != 80 || h[1].Route[1].Weight != 20 ||
				h[1].Timeout.AsDuration() != 10*time.Second || h[1].Retries.Attempts != 3 {
				t.Errorf("v1 VirtualService spec: %v", &vs1.Spec)
			}
			vsb, err := c.istio.NetworkingV1beta1().VirtualServices(ns).Get(ctx, "reviews", metav1.GetOptions{})
			if err != nil || vsb.ResourceVersion != vs1.ResourceVersion || len(vsb.Spec.Http) != 2 {
				t.Errorf("v1beta1 get: %v %+v", err, vsb)
			}
			drs, err := c.istio.NetworkingV1alpha3().DestinationRules(ns).List(ctx, metav1.ListOptions{})
			if err != nil || len(drs.Items) != 1 {
				t.Fatalf("v1alpha3 list: %v %v", err, drs)
			}
			dr := drs.Items[0]
			if dr.APIVersion != "" && dr.APIVersion != "networking.istio.io/v1alpha3" {
				t.Errorf("list item apiVersion %q", dr.APIVersion)
			}
			if len(dr.Spec.Subsets) != 2 || dr.Spec.TrafficPolicy.ConnectionPool.Tcp.MaxConnections != 100 ||
				dr.Spec.TrafficPolicy.OutlierDetection.Consecutive_5XxErrors.GetValue() != 5 {
				t.Errorf("DestinationRule spec: %v", &dr.Spec)
			}
			gw, err := c.istio.NetworkingV1().Gateways(ns).Get(ctx, "bookinfo-gateway", metav1.GetOptions{})
			if err != nil || gw.Spec.Selector["istio"] != "ingressgateway" || gw.Spec.Servers[0].Port.Number != 80 {
				t.Errorf("gateway: %v %v", err, gw)
			}
			if gw.Generation != 1 {
				t.Errorf("gateway generation %d, want 1", gw.Generation)
			}
		})
	}
	for _, v := range []string{"v1", "v1beta1"} {
		t.Run("security/"+v, func(t *testing.T) {
			ns := c.namespace(t, "sec-"+v)
			c.mustRun(t, ns, sample(t, "security.yaml", istio.SecurityGroup, v), "apply", "-f", "-")
			get := c.mustRun(t, ns, "", "get", "pa,ap,ra")
			hasRow(t, get, `^NAME MODE AGE$`)
			hasRow(t, get, `^peerauthentication.security.istio.io/default STRICT \d+s$`)
			hasRow(t, get, `^NAME ACTION AGE$`)
			hasRow(t, get, `^authorizationpolicy.security.istio.io/allow-get ALLOW \d+s$`)
			hasRow(t, get, `^authorizationpolicy.security.istio.io/deny-post DENY \d+s$`)
			hasRow(t, get, `^requestauthentication.security.istio.io/jwt-example \d+s$`)
			ra, err := c.istio.SecurityV1beta1().RequestAuthentications(ns).Get(ctx, "jwt-example", metav1.GetOptions{})
			if err != nil || ra.Spec.JwtRules[0].Issuer != "testing@secure.istio.io" {
				t.Errorf("request authentication: %v %v", err, ra)
			}
			ap, err := c.istio.SecurityV1().AuthorizationPolicies(ns).Get(ctx, "deny-post", metav1.GetOptions{})
			if err != nil || ap.Spec.Rules[0].To[0].Operation.Methods[0] != "POST" {
				t.Errorf("authorization policy: %v %v", err, ap)
			}
		})
	}
}

// TestWatch watches VirtualServices with Istio's typed client in an older
// version while kubectl changes them.
func TestWatch(t *testing.T) {
	c := startCluster(t)
	ns := c.namespace(t, "watch")
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	w, err := c.istio.NetworkingV1alpha3().VirtualServices(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	yaml := sample(t, "networking.yaml", istio.NetworkingGroup, "v1")
	c.mustRun(t, ns, yaml, "apply", "-f", "-")
	c.mustRun(t, ns, strings.Replace(yaml, "weight: 80", "weight: 50", 1), "apply", "-f", "-")
	c.mustRun(t, ns, "", "delete", "vs", "reviews")
	var got []string
	for len(got) < 3 {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				t.Fatalf("watch ended; events %v", got)
			}
			vs, isVS := ev.Object.(interface{ GetName() string })
			if !isVS {
				t.Fatalf("event object %T", ev.Object)
			}
			if vs.GetName() != "reviews" {
				continue
			}
			got = append(got, string(ev.Type))
			if ev.Type == watch.Modified {
				if w := ev.Object.(interface{ GetGeneration() int64 }).GetGeneration(); w != 2 {
					t.Errorf("generation after the spec changed: %d, want 2", w)
				}
			}
		case <-ctx.Done():
			t.Fatalf("events so far %v", got)
		}
	}
	if want := "ADDED MODIFIED DELETED"; strings.Join(got, " ") != want {
		t.Errorf("events %v, want %s", got, want)
	}
}

// TestValidationErrors applies broken Istio YAML with kubectl and checks the
// errors name the field.
func TestValidationErrors(t *testing.T) {
	c := startCluster(t)
	ns := c.namespace(t, "invalid")
	vs := func(route string) string {
		return `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata:
  name: bad
spec:
  hosts: [reviews]
  http:
` + route
	}
	for _, tc := range []struct {
		name, yaml string
		args       []string
		want       []string
	}{
		{"negative weight", vs(`  - route:
    - destination: {host: reviews, subset: v1}
      weight: -1
`), nil, []string{`spec.http[0].route[0].weight: Invalid value: -1`}},
		{"typo'd field", vs(`  - rout:
    - destination: {host: reviews}
`), nil, []string{`unknown field "spec.http[0].rout"`}},
		{"wrong type", vs(`  - route:
    - destination: {host: reviews}
      weight: eighty
`), nil, []string{`spec.http[0].route[0].weight: Invalid value: "eighty": must be of type integer`}},
		{"bad regex", vs(`  - match:
    - uri: {regex: "a(b"}
    route:
    - destination: {host: reviews}
`), nil, []string{`spec.http[0].match[0].uri.regex: Invalid value: "a(b"`}},
		{"bad duration", vs(`  - route:
    - destination: {host: reviews}
    timeout: soon
`), nil, []string{`spec.http[0].timeout: Invalid value: "soon"`}},
		{"missing destination host", vs(`  - route:
    - destination: {subset: v1}
`), nil, []string{`spec.http[0].route[0].destination.host: Required value`}},
		{"duplicate subsets", `apiVersion: networking.istio.io/v1beta1
kind: DestinationRule
metadata: {name: bad}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v1, labels: {version: v2}}
`, nil, []string{`spec.subsets[1].name: Duplicate value`}},
		{"unknown enum", `apiVersion: security.istio.io/v1
kind: PeerAuthentication
metadata: {name: bad}
spec:
  mtls: {mode: STRICTEST}
`, nil, []string{`spec.mtls.mode: Unsupported value: "STRICTEST"`}},
		{"deny without rules", `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: bad}
spec:
  action: DENY
`, nil, []string{`spec.rules: Required value: DENY action without rules`}},
		{"gateway server without port", `apiVersion: networking.istio.io/v1alpha3
kind: Gateway
metadata: {name: bad}
spec:
  servers:
  - hosts: ["*"]
`, nil, []string{`spec.servers[0].port: Required value`}},
		{"jwt rule without issuer", `apiVersion: security.istio.io/v1beta1
kind: RequestAuthentication
metadata: {name: bad}
spec:
  jwtRules:
  - audiences: [a]
`, nil, []string{`spec.jwtRules[0].issuer: Required value`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := c.run(t, ns, tc.yaml, append([]string{"apply", "-f", "-"}, tc.args...)...)
			if err == nil {
				t.Fatalf("apply succeeded:\n%s", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("error lacks %q:\n%s", w, out)
				}
			}
		})
	}
	// With --validate=false (fieldValidation=Ignore) an unknown field is
	// dropped, as for a CRD.
	out := c.mustRun(t, ns, vs(`  - route:
    - destination: {host: reviews}
    colour: blue
`), "apply", "--validate=false", "-f", "-")
	if !strings.Contains(out, "created") {
		t.Errorf("apply --validate=false: %s", out)
	}
	if y := c.mustRun(t, ns, "", "get", "vs", "bad", "-o", "jsonpath={.spec}"); strings.Contains(y, "colour") || !strings.Contains(y, "reviews") {
		t.Errorf("unknown field kept:\n%s", y)
	}
}

// TestDeprecatedFields applies fields Istio deprecated long ago but that
// configurations in the wild still carry; they come back mapped.
func TestDeprecatedFields(t *testing.T) {
	c := startCluster(t)
	ns := c.namespace(t, "deprecated")
	c.mustRun(t, ns, `apiVersion: networking.istio.io/v1alpha3
kind: VirtualService
metadata:
  name: ratings
spec:
  hosts: [ratings]
  http:
  - fault:
      abort:
        percent: 50
        httpStatus: 503
      delay:
        percent: 10
        fixedDelay: 5s
    route:
    - destination: {host: ratings}
---
apiVersion: networking.istio.io/v1alpha3
kind: DestinationRule
metadata:
  name: ratings
spec:
  host: ratings
  trafficPolicy:
    outlierDetection:
      consecutiveErrors: 7
      interval: 5s
`, "apply", "-f", "-")
	ctx := t.Context()
	vs, err := c.istio.NetworkingV1().VirtualServices(ns).Get(ctx, "ratings", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	f := vs.Spec.Http[0].Fault
	if f.Abort.Percentage.GetValue() != 50 || f.Abort.GetHttpStatus() != 503 {
		t.Errorf("abort: %v", f.Abort)
	}
	if f.Delay.Percentage.GetValue() != 10 || f.Delay.Percent != 0 { //nolint:staticcheck
		t.Errorf("delay: %v", f.Delay)
	}
	dr, err := c.istio.NetworkingV1().DestinationRules(ns).Get(ctx, "ratings", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if o := dr.Spec.TrafficPolicy.OutlierDetection; o.Consecutive_5XxErrors.GetValue() != 7 || o.ConsecutiveErrors != 0 { //nolint:staticcheck
		t.Errorf("outlier detection: %v", o)
	}
	// What a user sees of it.
	y := c.mustRun(t, ns, "", "get", "dr", "ratings", "-o", "yaml")
	for _, want := range []string{"apiVersion: networking.istio.io/v1\n", "consecutive5xxErrors: 7", "interval: 5s", "generation: 1"} {
		if !strings.Contains(y, want) {
			t.Errorf("kubectl get -o yaml lacks %q:\n%s", want, y)
		}
	}
	d := c.mustRun(t, ns, "", "describe", "vs", "ratings")
	for _, want := range []string{"Name:", "ratings", "API Version:  networking.istio.io/v1", "Kind:         VirtualService", "Http Status:  503"} {
		if !strings.Contains(d, want) {
			t.Errorf("kubectl describe lacks %q:\n%s", want, d)
		}
	}
}

// TestSubsetWarning routes to a subset no DestinationRule defines: the
// write succeeds (Istio does not reject it) with a warning naming the
// field.
func TestSubsetWarning(t *testing.T) {
	c := startCluster(t)
	ns := c.namespace(t, "subsets")
	c.mustRun(t, ns, `apiVersion: networking.istio.io/v1
kind: DestinationRule
metadata: {name: reviews}
spec:
  host: reviews
  subsets:
  - {name: v1, labels: {version: v1}}
  - {name: v2, labels: {version: v2}}
`, "apply", "-f", "-")
	out := c.mustRun(t, ns, `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: reviews}
spec:
  hosts: [reviews]
  http:
  - route:
    - destination: {host: reviews, subset: v1}
      weight: 50
    - destination: {host: reviews.`+ns+`.svc.cluster.local, subset: v3}
      weight: 50
`, "apply", "-f", "-")
	if !strings.Contains(out, "virtualservice.networking.istio.io/reviews created") {
		t.Errorf("apply: %s", out)
	}
	want := `Warning: spec.http[0].route[1].destination.subset: subset "v3" of host "reviews.subsets.svc.cluster.local" is not defined by any DestinationRule`
	if !strings.Contains(out, want) {
		t.Errorf("apply output lacks %q:\n%s", want, out)
	}
	if strings.Contains(out, `subset "v1"`) {
		t.Errorf("warned about a defined subset:\n%s", out)
	}
}

// TestInformers lists and watches through istio.io/client-go's shared
// informers, as the mesh's control plane does.
func TestInformers(t *testing.T) {
	c := startCluster(t)
	ns := c.namespace(t, "informers")
	c.mustRun(t, ns, sample(t, "networking.yaml", istio.NetworkingGroup, "v1alpha3"), "apply", "-f", "-")
	c.mustRun(t, ns, sample(t, "security.yaml", istio.SecurityGroup, "v1beta1"), "apply", "-f", "-")
	factory := istioinformers.NewSharedInformerFactory(c.istio, 0)
	vsInf := factory.Networking().V1().VirtualServices()
	apInf := factory.Security().V1().AuthorizationPolicies()
	vsInf.Informer()
	apInf.Informer()
	ctx, cancel := context.WithCancel(t.Context())
	defer func() { cancel(); factory.Shutdown() }()
	factory.Start(ctx.Done())
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			t.Fatalf("cache of %v did not sync", typ)
		}
	}
	vss, err := vsInf.Lister().VirtualServices(ns).List(labels.Everything())
	if err != nil || len(vss) != 2 {
		t.Fatalf("listed %d virtual services: %v", len(vss), err)
	}
	aps, err := apInf.Lister().AuthorizationPolicies(ns).List(labels.Everything())
	if err != nil || len(aps) != 2 {
		t.Fatalf("listed %d authorization policies: %v", len(aps), err)
	}
	c.mustRun(t, ns, "", "delete", "vs", "bookinfo")
	testenv.Eventually(t, "the informer sees the deletion", func(context.Context) (bool, error) {
		_, err := vsInf.Lister().VirtualServices(ns).Get("bookinfo")
		return err != nil, nil
	})
}
