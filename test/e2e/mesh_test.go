package e2e

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"skiff.dev/skiff/internal/runtime/runtimetest"
)

// TestMesh is the workshop's third day on one node: the shop apps in a
// namespace labelled istio-injection=enabled get sidecars (2/2), and the
// Istio YAML under examples/mesh does what Istio documents — header and
// user-agent routing, an 80/20 split, the ingress gateway, timeouts,
// faults, retries, a circuit breaker, STRICT mTLS with SPIFFE identities,
// authorization and JWT, Istio's metrics on both sidecars, bad input
// refused or reported — and a Job with a sidecar completes.
func TestMesh(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the mesh in -short mode")
	}
	c := startCluster(t, nil)
	importShop(t, c)
	k := c.mustKubectl
	k(shopManifests, "apply", "-f", "-")
	for _, d := range []string{"productms", "productreviewms-v1", "productreviewms-v2", "ui", "client"} {
		k("", "-n", "shop", "rollout", "status", "deployment/"+d, "--timeout=120s")
	}
	t.Run("injected", func(t *testing.T) {
		out := k("", "-n", "shop", "get", "pods", "-l", "app=client", "--no-headers")
		if !strings.Contains(out, "2/2") {
			t.Fatalf("client pod not 2/2:\n%s", out)
		}
	})

	// fetch runs wget in the client pod (through its sidecar) and returns
	// the body, or the error wget printed.
	fetch := func(url string, args ...string) (string, error) {
		cmd := append([]string{"-n", "shop", "exec", "deploy/client", "-c", "client", "--", "timeout", "15", "wget", "-qO-"}, args...)
		return c.kubectl("", append(cmd, url)...)
	}
	// versions fetches url n times in one shell loop inside the client pod
	// and counts the review versions that answered.
	versions := func(t *testing.T, n int, url string, args ...string) map[string]int {
		t.Helper()
		script := fmt.Sprintf(`for i in $(seq %d); do wget -qO- %s %q 2>&1; echo; done`, n, strings.Join(args, " "), url)
		out, err := c.kubectl("", "-n", "shop", "exec", "deploy/client", "-c", "client", "--", "sh", "-c", script)
		if err != nil {
			t.Fatalf("loop: %v\n%s", err, out)
		}
		seen := map[string]int{}
		for _, line := range strings.Split(out, "\n") {
			switch {
			case strings.Contains(line, `"version":"v1"`):
				seen["v1"]++
			case strings.Contains(line, `"version":"v2"`):
				seen["v2"]++
			case strings.TrimSpace(line) != "":
				seen["other"]++
			}
		}
		return seen
	}
	apply := func(t *testing.T, files ...string) {
		t.Helper()
		for _, f := range files {
			k("", "apply", "-f", filepath.Join(repoRoot(), "examples", "mesh", f))
		}
	}
	const reviews = "http://productreviewms:8080/productreviewms/productreview/1"
	// eventuallyVersion waits until a request (with args) is answered by want.
	eventuallyVersion := func(t *testing.T, want string, args ...string) {
		t.Helper()
		c.waitFor("an answer from "+want, func() bool {
			out, err := fetch(reviews, args...)
			return err == nil && strings.Contains(out, `"version":"`+want+`"`)
		})
	}

	t.Run("routing", func(t *testing.T) {
		apply(t, "destinationrule.yaml", "route-tester-v2.yaml")
		eventuallyVersion(t, "v2", "--header", "end-user: tester")
		if got := versions(t, 20, reviews); got["v1"] != 20 {
			t.Errorf("without the header: %v, want all v1", got)
		}
		if got := versions(t, 20, reviews, "--header", "'end-user: tester'"); got["v2"] != 20 {
			t.Errorf("end-user: tester: %v, want all v2", got)
		}
		apply(t, "route-user-agent.yaml")
		eventuallyVersion(t, "v2", "-U", "Mozilla/5.0 Firefox/140.0")
		eventuallyVersion(t, "v1", "-U", "curl/8.0")
		apply(t, "route-80-20.yaml")
		c.waitFor("the 80/20 split", func() bool {
			got := versions(t, 20, reviews)
			return got["v2"] > 0 && got["v1"] > 0
		})
		got := versions(t, 1000, reviews)
		if got["v1"]+got["v2"] != 1000 || got["v2"] < 150 || got["v2"] > 250 {
			t.Errorf("80/20 over 1000 requests: %v (want v2 within 200±50)", got)
		}
	})

	t.Run("gateway", func(t *testing.T) {
		// The node's edge proxy is the ingress gateway: /ui and
		// /productms from outside the mesh.
		apply(t, "gateway.yaml")
		edge := func(path string) (string, error) {
			return c.inNode("", runtimetest.BusyboxPath, "timeout", "5", runtimetest.BusyboxPath, "wget", "-qO-", "http://127.0.0.1"+path)
		}
		c.waitFor("the gateway to route /productms", func() bool {
			out, err := edge("/productms/product/version")
			return err == nil && strings.Contains(out, `"version":"v1"`)
		})
		c.waitFor("the gateway to route /ui", func() bool {
			out, err := edge("/ui/")
			return err == nil && strings.Contains(out, "<html")
		})
		if out, err := edge("/elsewhere"); err == nil || !strings.Contains(out, "404") {
			t.Errorf("a path no VirtualService routes must answer 404: %v\n%s", err, out)
		}
	})

	t.Run("resilience", func(t *testing.T) {
		apply(t, "timeout.yaml")
		c.waitFor("the 1s timeout", func() bool {
			start := time.Now()
			out, err := fetch("http://productreviewms:8080/productreviewms/productreview/timeout/1")
			took := time.Since(start)
			return err != nil && strings.Contains(out, "504") && took < 4*time.Second
		})
		apply(t, "fault-delay.yaml")
		c.waitFor("the 2s delay", func() bool {
			start := time.Now()
			_, err := fetch(reviews)
			return err == nil && time.Since(start) >= 2*time.Second
		})
		apply(t, "fault-abort.yaml")
		c.waitFor("the abort for tester", func() bool {
			out, err := fetch(reviews, "--header", "end-user: tester")
			return err != nil && strings.Contains(out, "500")
		})
		if out, err := fetch(reviews); err != nil {
			t.Errorf("without the header the abort must not apply: %v\n%s", err, out)
		}
		apply(t, "retries.yaml")
		c.waitFor("the retry policy", func() bool {
			got := versions(t, 10, "http://productreviewms:8080/productreviewms/productreview/flaky/1")
			return got["v1"] == 10
		})
		apply(t, "circuit-breaker.yaml")
		c.waitFor("the circuit breaker's overflow", func() bool {
			script := `for i in 1 2 3 4 5 6; do (wget -qO- http://productreviewms:8080/productreviewms/productreview/timeout/1 2>&1; echo) & done; wait`
			out, _ := c.kubectl("", "-n", "shop", "exec", "deploy/client", "-c", "client", "--", "sh", "-c", script)
			return strings.Contains(out, "503")
		})
		k("", "delete", "-f", filepath.Join(repoRoot(), "examples", "mesh", "circuit-breaker.yaml"))
		apply(t, "destinationrule.yaml", "route-tester-v2.yaml")
	})

	t.Run("security", func(t *testing.T) {
		podIP := strings.TrimSpace(k("", "-n", "shop", "get", "pods", "-l", "app=productreviewms,version=v1", "-o", "jsonpath={.items[0].status.podIP}"))
		// Before STRICT, a plaintext client outside the mesh (the node
		// itself) is served.
		plain := func() (string, error) {
			return c.inNode("", runtimetest.BusyboxPath, "timeout", "5", runtimetest.BusyboxPath, "wget", "-qO-", "http://"+podIP+":8080/productreviewms/productreview/1")
		}
		if out, err := plain(); err != nil {
			t.Fatalf("plaintext before STRICT: %v\n%s", err, out)
		}
		apply(t, "mtls-strict.yaml")
		c.waitFor("STRICT to refuse plaintext", func() bool { _, err := plain(); return err != nil })
		eventuallyVersion(t, "v1")
		k("", "delete", "-f", filepath.Join(repoRoot(), "examples", "mesh", "mtls-strict.yaml"))

		// The server's sidecar saw the client's SPIFFE ID, proven by its
		// certificate (telemetry believes nothing else on mTLS).
		stats, err := fetch("http://" + podIP + ":15020/stats/prometheus")
		if err != nil {
			t.Fatalf("server sidecar stats: %v\n%s", err, stats)
		}
		if !hasSample(stats, "istio_requests_total", `reporter="destination"`, `source_workload="client"`,
			`source_principal="spiffe://cluster.local/ns/shop/sa/default"`, `connection_security_policy="mutual_tls"`) {
			t.Errorf("no mTLS request from the client's SPIFFE ID in the server's metrics:\n%s", stats)
		}

		// ALLOW lets GET and POST in, DENY on POST wins.
		apply(t, "authz-get-only.yaml")
		c.waitFor("POST to be denied", func() bool {
			out, err := fetch(reviews, "--post-data", "x")
			return err != nil && strings.Contains(out, "403")
		})
		if out, err := fetch(reviews); err != nil {
			t.Errorf("GET must stay allowed: %v\n%s", err, out)
		}
		k("", "delete", "-f", filepath.Join(repoRoot(), "examples", "mesh", "authz-get-only.yaml"))

		// JWT: a valid token passes, a bad one is refused (401), none is
		// not a request principal (403).
		jwks, token := newJWT(t, "https://issuer.shop.example", "tester")
		k(fmt.Sprintf(jwtPolicy, jwks), "apply", "-f", "-")
		c.waitFor("a request without a token to be denied", func() bool {
			out, err := fetch(reviews)
			return err != nil && strings.Contains(out, "403")
		})
		if out, err := fetch(reviews, "--header", "Authorization: Bearer "+token); err != nil {
			t.Errorf("valid token refused: %v\n%s", err, out)
		}
		if out, err := fetch(reviews, "--header", "Authorization: Bearer "+token[:len(token)-4]+"AAAA"); err == nil || !strings.Contains(out, "401") {
			t.Errorf("bad token: %v\n%s", err, out)
		}
		k(fmt.Sprintf(jwtPolicy, jwks), "delete", "-f", "-")
	})

	t.Run("bad input", func(t *testing.T) {
		out, err := c.kubectl(badRegexVS, "apply", "-f", "-")
		if err == nil || !strings.Contains(out, "spec.http[0].match[0].uri") {
			t.Errorf("a bad regex must be refused naming the field: %v\n%s", err, out)
		}
		out = k(unknownSubsetVS, "apply", "-f", "-")
		if !strings.Contains(out, "v3") {
			t.Errorf("a VirtualService routing to an unknown subset must warn:\n%s", out)
		}
		c.waitFor("the unknown subset to answer 503", func() bool {
			out, err := fetch("http://productms:8080/productms/product/version")
			return err != nil && strings.Contains(out, "503")
		})
		k(unknownSubsetVS, "delete", "-f", "-")
		// Everyone else still routes.
		eventuallyVersion(t, "v1")
	})

	t.Run("telemetry", func(t *testing.T) {
		if _, err := fetch(reviews); err != nil {
			t.Fatal(err)
		}
		stats, err := fetch("http://127.0.0.1:15020/stats/prometheus")
		if err != nil {
			t.Fatalf("client sidecar stats: %v\n%s", err, stats)
		}
		if !hasSample(stats, "istio_requests_total", `reporter="source"`, `source_workload="client"`,
			`destination_service="productreviewms.shop.svc.cluster.local"`, `destination_workload="productreviewms-v1"`, `response_code="200"`) {
			t.Errorf("no istio_requests_total for client → productreviewms in:\n%s", stats)
		}
	})

	t.Run("job completes", func(t *testing.T) {
		k(meshJob, "apply", "-f", "-")
		k("", "-n", "shop", "wait", "--for=condition=complete", "job/once", "--timeout=90s")
	})
}

// importShop imports skiff.local/shop:1: busybox plus the example apps'
// static binaries (built here), so that pods can run any of them.
func importShop(t *testing.T, c *cluster) {
	t.Helper()
	root := filepath.Join(c.dir, "shop-rootfs")
	if out, err := exec.Command("cp", "-a", runtimetest.BusyboxRootfs(t), root).CombinedOutput(); err != nil {
		t.Fatalf("copy rootfs: %v\n%s", err, out)
	}
	for _, app := range []string{"productms", "productreviewms", "ui"} {
		build := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(root, app), "./examples/"+app)
		build.Dir, build.Env = repoRoot(), append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", app, err, out)
		}
	}
	tarball := filepath.Join(c.dir, "shop.tar")
	f, err := os.Create(tarball)
	if err != nil {
		t.Fatal(err)
	}
	if err := runtimetest.WriteTree(f, root); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if out, err := exec.Command(c.bin, "import", "--data-dir", c.data, tarball, "skiff.local/shop:1").CombinedOutput(); err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
}

// shopManifests are the shop apps as the examples deploy them, with the
// imported image, in an injected namespace.
var shopManifests = `apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels: {istio-injection: enabled}
` + shopDeployment("productreviewms-v1", "productreviewms", "v1", "/productreviewms") +
	shopDeployment("productreviewms-v2", "productreviewms", "v2", "/productreviewms") +
	shopDeployment("productms", "productms", "v1", "/productms") +
	shopDeployment("ui", "ui", "v1", "/ui") +
	shopDeployment("client", "client", "v1", "sleep", "1000000") + `---
apiVersion: v1
kind: Service
metadata: {name: productreviewms, namespace: shop}
spec:
  selector: {app: productreviewms}
  ports: [{name: http, port: 8080, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: productms, namespace: shop}
spec:
  selector: {app: productms}
  ports: [{name: http, port: 8080, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: ui, namespace: shop}
spec:
  selector: {app: ui}
  ports: [{name: http, port: 8080, targetPort: 8080}]
`

func shopDeployment(name, app, version string, command ...string) string {
	return fmt.Sprintf(`---
apiVersion: apps/v1
kind: Deployment
metadata: {name: %[1]s, namespace: shop}
spec:
  replicas: 1
  selector: {matchLabels: {app: %[2]s, version: %[3]s}}
  template:
    metadata: {labels: {app: %[2]s, version: %[3]s}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: %[2]s
        image: skiff.local/shop:1
        imagePullPolicy: Never
        command: [%[4]s]
        env:
        - {name: VERSION, value: %[3]s}
        - {name: REVIEW_URL, value: "http://productreviewms:8080"}
        ports: [{containerPort: 8080}]
`, name, app, version, `"`+strings.Join(command, `", "`)+`"`)
}

const meshJob = `apiVersion: batch/v1
kind: Job
metadata: {name: once, namespace: shop}
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: once
        image: skiff.local/shop:1
        imagePullPolicy: Never
        command: [wget, -qO-, "http://productreviewms:8080/productreviewms/productreview/1"]
`

// hasSample reports whether the Prometheus text exposition has a sample
// of metric whose labels include every one of labels.
func hasSample(exposition, metric string, labels ...string) bool {
	for _, line := range strings.Split(exposition, "\n") {
		if !strings.HasPrefix(line, metric+"{") {
			continue
		}
		all := true
		for _, l := range labels {
			all = all && strings.Contains(line, l)
		}
		if all {
			return true
		}
	}
	return false
}

// newJWT returns an inline JWKS (JSON) and a token for sub signed by its key.
func newJWT(t *testing.T, issuer, sub string) (jwks, token string) {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.Public(), KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	token, err = josejwt.Signed(signer).Claims(josejwt.Claims{Issuer: issuer, Subject: sub,
		Expiry: josejwt.NewNumericDate(time.Now().Add(time.Hour)), IssuedAt: josejwt.NewNumericDate(time.Now())}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return string(set), token
}

// jwtPolicy requires a request principal from the test's issuer at
// productreviewms (%s: the inline JWKS).
const jwtPolicy = `apiVersion: security.istio.io/v1
kind: RequestAuthentication
metadata: {name: reviews-jwt, namespace: shop}
spec:
  selector: {matchLabels: {app: productreviewms}}
  jwtRules:
  - issuer: https://issuer.shop.example
    jwks: '%s'
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: reviews-require-jwt, namespace: shop}
spec:
  selector: {matchLabels: {app: productreviewms}}
  action: ALLOW
  rules:
  - from:
    - source: {requestPrincipals: ["https://issuer.shop.example/*"]}
`

const badRegexVS = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: bad-regex, namespace: shop}
spec:
  hosts: [productreviewms]
  http:
  - match:
    - uri: {regex: "/productreviewms/(unclosed"}
    route:
    - destination: {host: productreviewms}
`

const unknownSubsetVS = `apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: productms, namespace: shop}
spec:
  hosts: [productms]
  http:
  - route:
    - destination: {host: productms, subset: v3}
`
