package apiserver_test

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"skiff.dev/skiff/internal/testenv"
)

// TestBadRequests sends requests a user can get wrong and checks that each
// gets a Kubernetes Status with the right code and a message a person can
// act on — and that none of them changes anything.
func TestBadRequests(t *testing.T) {
	env := testenv.Start(t)
	client, err := rest.HTTPClientFor(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	base := env.Config.Host
	do := func(method, path, ctype, body string) (int, metav1.Status, string) {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		var st metav1.Status
		json.Unmarshal(data, &st)
		return resp.StatusCode, st, string(data)
	}
	const cms = "/api/v1/namespaces/default/configmaps"
	const deploys = "/apis/apps/v1/namespaces/default/deployments"
	code, _, body := do("POST", cms, "application/json", `{"metadata":{"name":"existing"}}`)
	if code != 201 {
		t.Fatalf("setup: %d %s", code, body)
	}
	var existing struct {
		Metadata metav1.ObjectMeta `json:"metadata"`
	}
	json.Unmarshal([]byte(body), &existing)

	deployment := func(extra string) string {
		return `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"d"},"spec":{` + extra +
			`"selector":{"matchLabels":{"a":"b"}},"template":{"metadata":{"labels":{"a":"b"}},"spec":{"containers":[{"name":"c","image":"i"}]}}}}`
	}
	cases := []struct {
		name, method, path, ctype, body string
		code                            int
		want                            string // substring of the Status message
	}{
		{"malformed json", "POST", cms, "application/json", `{"metadata":`, 400, "not valid JSON"},
		{"malformed yaml", "POST", cms, "application/yaml", "metadata: [unclosed", 400, "unknown format"},
		{"unknown resource", "GET", "/api/v1/namespaces/default/gizmos", "", "", 404, "not found"},
		{"unknown group", "GET", "/apis/nope.example.com/v1/things", "", "", 404, "not found"},
		{"unknown field strict", "POST", deploys + "?fieldValidation=Strict", "application/json", deployment(`"replicaz":2,`), 400, `unknown field "spec.replicaz"`},
		{"bad fieldValidation", "POST", cms + "?fieldValidation=Loud", "application/json", `{"metadata":{"name":"x"}}`, 400, "fieldValidation"},
		{"wrong type", "POST", deploys, "application/json", deployment(`"replicas":"two",`), 400, "cannot be handled as a Deployment"},
		{"invalid name", "POST", cms, "application/json", `{"metadata":{"name":"Bad_Name"}}`, 422, "metadata.name"},
		{"missing name", "POST", cms, "application/json", `{"metadata":{}}`, 422, "name or generateName is required"},
		{"oversized body", "POST", cms, "application/json", `{"metadata":{"name":"big"},"data":{"k":"` + strings.Repeat("x", 4<<20) + `"}}`, 413, "limit is"},
		{"namespace mismatch", "POST", cms, "application/json", `{"metadata":{"name":"x","namespace":"other"}}`, 400, "does not match the namespace"},
		{"missing namespace", "POST", "/api/v1/namespaces/nope/configmaps", "application/json", `{"metadata":{"name":"x"}}`, 404, `namespaces "nope" not found`},
		{"stale resourceVersion", "PUT", cms + "/existing", "application/json", `{"metadata":{"name":"existing","resourceVersion":"1"}}`, 409, "the object has been modified"},
		{"get missing", "GET", cms + "/absent", "", "", 404, `configmaps "absent" not found`},
		{"delete missing", "DELETE", cms + "/absent", "", "", 404, `configmaps "absent" not found`},
		{"bad label selector", "GET", cms + "?labelSelector=a%3D%3D%3Db", "", "", 400, "unable to parse requirement"},
		{"unsupported field selector", "GET", cms + "?fieldSelector=spec.nodeName%3Dx", "", "", 400, "field label not supported: spec.nodeName"},
		{"unsupported patch type", "PATCH", cms + "/existing", "text/plain", "x", 415, "not supported"},
		{"apiVersion mismatch", "POST", deploys, "application/json", strings.Replace(deployment(""), "apps/v1", "apps/v1beta1", 1), 400, "does not match the expected API version"},
		{"kind mismatch", "POST", cms, "application/json", `{"kind":"Secret","metadata":{"name":"x"}}`, 400, "does not match"},
		{"bad continue token", "GET", cms + "?limit=1&continue=%21%21", "", "", 400, "continue key is not valid"},
		{"bad propagationPolicy", "DELETE", cms + "/existing?propagationPolicy=Sideways", "", "", 400, "propagationPolicy"},
		{"resourceVersion on create", "POST", cms, "application/json", `{"metadata":{"name":"rv","resourceVersion":"5"}}`, 400, "resourceVersion should not be set"},
		{"name mismatch on update", "PUT", cms + "/existing", "application/json", `{"metadata":{"name":"other"}}`, 400, "does not match the name on the URL"},
		{"invalid json patch", "PATCH", cms + "/existing", "application/json-patch+json", `{"op":"add"}`, 400, "JSON patch is invalid"},
		{"failing json patch", "PATCH", cms + "/existing", "application/json-patch+json", `[{"op":"test","path":"/data/none","value":"x"}]`, 422, ""},
		{"create on a named path", "POST", cms + "/existing", "application/json", `{"metadata":{"name":"existing"}}`, 405, "not supported"},
		{"negative limit", "GET", cms + "?limit=-1", "", "", 400, "limit"},
		{"empty body", "POST", cms, "application/json", ``, 400, "empty"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, st, body := do(tc.method, tc.path, tc.ctype, tc.body)
			if code != tc.code {
				t.Fatalf("code %d, want %d; body %s", code, tc.code, clip(body))
			}
			if st.Kind != "Status" || st.Status != metav1.StatusFailure || int(st.Code) != tc.code {
				t.Fatalf("not a failure Status with code %d: %s", tc.code, clip(body))
			}
			if !strings.Contains(st.Message, tc.want) {
				t.Fatalf("message %q lacks %q", st.Message, tc.want)
			}
		})
	}

	// Nothing above changed the object that was there.
	code, _, body = do("GET", cms+"/existing", "", "")
	if code != 200 || !strings.Contains(body, `"resourceVersion":"`+existing.Metadata.ResourceVersion+`"`) {
		t.Fatalf("existing object changed: %d %s", code, body)
	}

	t.Run("anonymous", func(t *testing.T) {
		anon := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		resp, err := anon.Get(base + cms)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 401 || !bytes.Contains(data, []byte(`"reason":"Unauthorized"`)) {
			t.Fatalf("anonymous: %d %s", resp.StatusCode, data)
		}
		// Health endpoints answer without credentials, as upstream's do.
		resp2, err := anon.Get(base + "/readyz")
		if err != nil || resp2.StatusCode != 200 {
			t.Fatalf("anonymous /readyz: %v %v", err, resp2.StatusCode)
		}
		resp2.Body.Close()
	})
}

func clip(s string) string {
	if len(s) > 400 {
		return s[:400] + "..."
	}
	return s
}
