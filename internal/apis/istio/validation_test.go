package istio

import (
	"encoding/json"
	"strings"
	"testing"

	networkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// newScheme is a scheme with the served types.
func newScheme(t testing.TB) *runtime.Scheme {
	s := runtime.NewScheme()
	if err := AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return s
}

// decodeSpec builds a stored-form object of kind from a spec in JSON, the
// way the API server does (PreDecode, then the Go type's decoding).
func decodeSpec(t testing.TB, s *runtime.Scheme, kind, spec string) (runtime.Object, []string, error) {
	t.Helper()
	group := NetworkingGroup
	for _, k := range Kinds[SecurityGroup] {
		if k == kind {
			group = SecurityGroup
		}
	}
	gvk := schema.GroupVersionKind{Group: group, Version: StorageVersion, Kind: kind}
	data := `{"apiVersion":"` + gvk.GroupVersion().String() + `","kind":"` + kind + `","metadata":{"name":"x","namespace":"ns"},"spec":` + spec + `}`
	out, unknown, err := PreDecode(s, gvk.GroupKind(), []byte(data))
	if err != nil {
		return nil, nil, err
	}
	obj, err := s.New(gvk)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out, obj); err != nil {
		return nil, unknown, err
	}
	return obj, unknown, nil
}

func TestValidate(t *testing.T) {
	s := newScheme(t)
	reviews := `{"hosts":["reviews"],"http":[%s]}`
	vsRoute := func(route string) string { return strings.Replace(reviews, "%s", route, 1) }
	for _, tc := range []struct {
		name, kind, spec string
		want             []string // substrings of the errors; none = valid
	}{
		{"vs valid", "VirtualService", vsRoute(`{"match":[{"headers":{"end-user":{"exact":"tester"}}}],"route":[{"destination":{"host":"reviews","subset":"v2"}}]},
			{"route":[{"destination":{"host":"reviews","subset":"v1"},"weight":80},{"destination":{"host":"reviews","subset":"v2"},"weight":20}]}`), nil},
		{"vs weights need not sum to 100", "VirtualService", vsRoute(`{"route":[{"destination":{"host":"a"},"weight":30},{"destination":{"host":"b"},"weight":30}]}`), nil},
		{"vs weights all zero", "VirtualService", vsRoute(`{"route":[{"destination":{"host":"a"}},{"destination":{"host":"b"}}]}`), []string{"spec.http[0].route: Invalid value: \"\": total destination weight = 0"}},
		{"vs weight over 100", "VirtualService", vsRoute(`{"route":[{"destination":{"host":"a"},"weight":101}]}`), []string{"spec.http[0].route[0].weight: Invalid value: 101"}},
		{"vs negative weight", "VirtualService", vsRoute(`{"route":[{"destination":{"host":"a"},"weight":-5}]}`), []string{"spec.http[0].route[0].weight: Invalid value: -5"}},
		{"vs destination without host", "VirtualService", vsRoute(`{"route":[{"destination":{"subset":"v1"}}]}`), []string{"spec.http[0].route[0].destination.host: Required value"}},
		{"vs no routes", "VirtualService", `{"hosts":["reviews"]}`, []string{"spec.http: Required value"}},
		{"vs star host for mesh", "VirtualService", `{"hosts":["*"],"http":[{"route":[{"destination":{"host":"a"}}]}]}`, []string{"spec.hosts[0]: Invalid value: \"*\""}},
		{"vs star host for gateway", "VirtualService", `{"hosts":["*"],"gateways":["gw"],"http":[{"route":[{"destination":{"host":"a"}}]}]}`, nil},
		{"vs delegate without hosts", "VirtualService", `{"http":[{"route":[{"destination":{"host":"a"}}]}]}`, nil},
		{"vs delegate with gateways", "VirtualService", `{"gateways":["gw"],"http":[{"route":[{"destination":{"host":"a"}}]}]}`, []string{"spec.gateways: Forbidden"}},
		{"vs bad regex", "VirtualService", vsRoute(`{"match":[{"uri":{"regex":"(a"}}],"route":[{"destination":{"host":"a"}}]}`), []string{"spec.http[0].match[0].uri.regex: Invalid value: \"(a\""}},
		{"vs bad header regex", "VirtualService", vsRoute(`{"match":[{"headers":{"x":{"regex":"[z"}}}],"route":[{"destination":{"host":"a"}}]}`), []string{"spec.http[0].match[0].headers[x].regex"}},
		{"vs timeout under 1ms", "VirtualService", vsRoute(`{"timeout":"0.0001s","route":[{"destination":{"host":"a"}}]}`), []string{"spec.http[0].timeout: Invalid value: \"100µs\": duration must be greater than 1ms"}},
		{"vs negative retries", "VirtualService", vsRoute(`{"retries":{"attempts":-1},"route":[{"destination":{"host":"a"}}]}`), []string{"spec.http[0].retries.attempts: Invalid value: -1"}},
		{"vs bad retryOn", "VirtualService", vsRoute(`{"retries":{"attempts":2,"retryOn":"5xx,sometimes"},"route":[{"destination":{"host":"a"}}]}`), []string{`spec.http[0].retries.retryOn: Invalid value: "5xx,sometimes": "sometimes" is not a valid retryOn policy`}},
		{"vs fault percentage over 100", "VirtualService", vsRoute(`{"fault":{"abort":{"httpStatus":503,"percentage":{"value":150}}},"route":[{"destination":{"host":"a"}}]}`), []string{"spec.http[0].fault.abort.percentage.value: Invalid value: 150"}},
		{"vs fault abort status", "VirtualService", vsRoute(`{"fault":{"abort":{"httpStatus":99}},"route":[{"destination":{"host":"a"}}]}`), []string{"spec.http[0].fault.abort.httpStatus: Invalid value: 99"}},
		{"vs fault delay needs fixedDelay", "VirtualService", vsRoute(`{"fault":{"delay":{"percentage":{"value":5}}},"route":[{"destination":{"host":"a"}}]}`), []string{"spec.http[0].fault.delay.fixedDelay: Required value"}},
		{"vs route and redirect", "VirtualService", vsRoute(`{"redirect":{"uri":"/x"},"route":[{"destination":{"host":"a"}}]}`), []string{"spec.http[0]: Invalid value"}},
		{"vs bad gateway name", "VirtualService", `{"hosts":["a.com"],"gateways":["ns/"],"http":[{"route":[{"destination":{"host":"a"}}]}]}`, []string{"spec.gateways[0]"}},
		{"dr valid", "DestinationRule", `{"host":"reviews","trafficPolicy":{"connectionPool":{"tcp":{"maxConnections":100},"http":{"http1MaxPendingRequests":10,"maxRequestsPerConnection":1}},"outlierDetection":{"consecutive5xxErrors":5,"interval":"10s","baseEjectionTime":"30s","maxEjectionPercent":50}},"subsets":[{"name":"v1","labels":{"version":"v1"}},{"name":"v2","labels":{"version":"v2"}}]}`, nil},
		{"dr no host", "DestinationRule", `{"subsets":[{"name":"v1"}]}`, []string{"spec.host: Required value"}},
		{"dr duplicate subsets", "DestinationRule", `{"host":"r","subsets":[{"name":"v1"},{"name":"v1"}]}`, []string{"spec.subsets[1].name: Duplicate value"}},
		{"dr empty subset name", "DestinationRule", `{"host":"r","subsets":[{"labels":{"a":"b"}}]}`, []string{"spec.subsets[0].name: Required value"}},
		{"dr bad subset label", "DestinationRule", `{"host":"r","subsets":[{"name":"v1","labels":{"a b":"c"}}]}`, []string{"spec.subsets[0].labels[a b]"}},
		{"dr negative connections", "DestinationRule", `{"host":"r","trafficPolicy":{"connectionPool":{"tcp":{"maxConnections":-1}}}}`, []string{"spec.trafficPolicy.connectionPool.tcp.maxConnections: Invalid value: -1"}},
		{"dr empty connection pool", "DestinationRule", `{"host":"r","trafficPolicy":{"connectionPool":{}}}`, []string{"spec.trafficPolicy.connectionPool: Required value"}},
		{"dr ejection percent", "DestinationRule", `{"host":"r","subsets":[{"name":"v1","trafficPolicy":{"outlierDetection":{"maxEjectionPercent":120}}}]}`, []string{"spec.subsets[0].trafficPolicy.outlierDetection.maxEjectionPercent: Invalid value: 120"}},
		{"gw valid", "Gateway", `{"selector":{"istio":"ingressgateway"},"servers":[{"port":{"number":80,"name":"http","protocol":"HTTP"},"hosts":["*"]}]}`, nil},
		{"gw no servers", "Gateway", `{"selector":{"istio":"ingressgateway"}}`, []string{"spec.servers: Required value"}},
		{"gw server without hosts", "Gateway", `{"servers":[{"port":{"number":80,"name":"http","protocol":"HTTP"}}]}`, []string{"spec.servers[0].hosts: Required value"}},
		{"gw server bad port", "Gateway", `{"servers":[{"port":{"number":70000,"name":"http","protocol":"HTTP"},"hosts":["*"]}]}`, []string{"spec.servers[0].port.number: Invalid value: 70000"}},
		{"gw https without tls", "Gateway", `{"servers":[{"port":{"number":443,"name":"https","protocol":"HTTPS"},"hosts":["*"]}]}`, []string{"spec.servers[0].tls: Required value"}},
		{"se valid", "ServiceEntry", `{"hosts":["httpbin.org"],"ports":[{"number":80,"name":"http","protocol":"HTTP"}],"resolution":"DNS","location":"MESH_EXTERNAL"}`, nil},
		{"se static endpoints", "ServiceEntry", `{"hosts":["db.internal"],"ports":[{"number":5432,"name":"pg","protocol":"TCP"}],"resolution":"STATIC","endpoints":[{"address":"203.0.113.7","ports":{"pg":5432}}]}`, nil},
		{"se no hosts", "ServiceEntry", `{"ports":[{"number":80,"name":"http","protocol":"HTTP"}]}`, []string{"spec.hosts: Required value"}},
		{"se static bad address", "ServiceEntry", `{"hosts":["db"],"ports":[{"number":1,"name":"p"}],"resolution":"STATIC","endpoints":[{"address":"not-an-ip"}]}`, []string{"spec.endpoints[0].address: Invalid value: \"not-an-ip\""}},
		{"se none with endpoints", "ServiceEntry", `{"hosts":["db"],"resolution":"NONE","endpoints":[{"address":"203.0.113.1"}]}`, []string{"spec.endpoints: Forbidden"}},
		{"se dns wildcard without endpoints", "ServiceEntry", `{"hosts":["*.example.com"],"resolution":"DNS"}`, []string{"spec.hosts[0]: Invalid value: \"*.example.com\""}},
		{"se endpoint port undefined", "ServiceEntry", `{"hosts":["db"],"ports":[{"number":1,"name":"p"}],"resolution":"STATIC","endpoints":[{"address":"203.0.113.1","ports":{"q":2}}]}`, []string{"spec.endpoints[0].ports[q]"}},
		{"sidecar valid", "Sidecar", `{"egress":[{"hosts":["./*","istio-system/*"]}]}`, nil},
		{"sidecar egress host without namespace", "Sidecar", `{"egress":[{"hosts":["reviews"]}]}`, []string{"spec.egress[0].hosts[0]: Invalid value: \"reviews\""}},
		{"pa strict", "PeerAuthentication", `{"mtls":{"mode":"STRICT"}}`, nil},
		{"pa port level without selector", "PeerAuthentication", `{"mtls":{"mode":"STRICT"},"portLevelMtls":{"8080":{"mode":"DISABLE"}}}`, []string{"spec.portLevelMtls: Forbidden"}},
		{"ap allow get", "AuthorizationPolicy", `{"selector":{"matchLabels":{"app":"httpbin"}},"action":"ALLOW","rules":[{"to":[{"operation":{"methods":["GET"]}}]}]}`, nil},
		{"ap deny post", "AuthorizationPolicy", `{"action":"DENY","rules":[{"to":[{"operation":{"methods":["POST"]}}]}]}`, nil},
		{"ap deny without rules", "AuthorizationPolicy", `{"action":"DENY"}`, []string{"spec.rules: Required value: DENY action without rules"}},
		{"ap custom without provider", "AuthorizationPolicy", `{"action":"CUSTOM","rules":[{}]}`, []string{"spec.provider.name: Required value"}},
		{"ap provider with allow", "AuthorizationPolicy", `{"action":"ALLOW","provider":{"name":"ext"},"rules":[{}]}`, []string{"spec.provider: Forbidden"}},
		{"ap empty source", "AuthorizationPolicy", `{"rules":[{"from":[{"source":{}}]}]}`, []string{"spec.rules[0].from[0].source: Required value"}},
		{"ap bad port", "AuthorizationPolicy", `{"rules":[{"to":[{"operation":{"ports":["http"]}}]}]}`, []string{"spec.rules[0].to[0].operation.ports[0]: Invalid value: \"http\""}},
		{"ap bad ip block", "AuthorizationPolicy", `{"rules":[{"from":[{"source":{"ipBlocks":["10.0.0.0/33"]}}]}]}`, []string{"spec.rules[0].from[0].source.ipBlocks[0]"}},
		{"ap when without values", "AuthorizationPolicy", `{"rules":[{"when":[{"key":"request.headers[x]"}]}]}`, []string{"spec.rules[0].when[0].values: Required value"}},
		{"ra valid", "RequestAuthentication", `{"selector":{"matchLabels":{"app":"httpbin"}},"jwtRules":[{"issuer":"testing@secure.istio.io","jwksUri":"https://example.com/jwks.json"}]}`, nil},
		{"ra no issuer", "RequestAuthentication", `{"jwtRules":[{"audiences":["a"]}]}`, []string{"spec.jwtRules[0].issuer: Required value"}},
		{"ra bad jwks uri", "RequestAuthentication", `{"jwtRules":[{"issuer":"i","jwksUri":"ftp://x"}]}`, []string{"spec.jwtRules[0].jwksUri: Invalid value"}},
		{"ra selector and targetRef", "RequestAuthentication", `{"selector":{"matchLabels":{"a":"b"}},"targetRef":{"kind":"Gateway","name":"g"},"jwtRules":[{"issuer":"i"}]}`, []string{"spec: Invalid value"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obj, _, err := decodeSpec(t, s, tc.kind, tc.spec)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			Default(obj)
			errs := ValidateCreate(obj)
			if len(tc.want) == 0 {
				if len(errs) > 0 {
					t.Fatalf("unexpected errors: %v", errs.ToAggregate())
				}
				return
			}
			if len(errs) == 0 {
				t.Fatalf("no errors, want %q", tc.want)
			}
			got := errs.ToAggregate().Error()
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("errors lack %q:\n%s", w, got)
				}
			}
		})
	}
}

func TestPreDecode(t *testing.T) {
	s := newScheme(t)
	for _, tc := range []struct {
		name, kind, spec string
		unknown          []string
		err              string
	}{
		{"clean", "VirtualService", `{"hosts":["a"],"http":[{"route":[{"destination":{"host":"a"}}]}]}`, nil, ""},
		{"proto names accepted", "VirtualService", `{"hosts":["a"],"http":[{"route":[{"destination":{"host":"a"}}],"cors_policy":{"max_age":"1s"}}]}`, nil, ""},
		{"unknown nested", "VirtualService", `{"hosts":["a"],"http":[{"rout":[]}],"hostz":1}`, []string{`unknown field "spec.hostz"`, `unknown field "spec.http[0].rout"`}, ""},
		{"unknown in map value", "VirtualService", `{"http":[{"match":[{"headers":{"x":{"exakt":"y"}}}]}]}`, []string{`unknown field "spec.http[0].match[0].headers[x].exakt"`}, ""},
		{"unknown in status", "VirtualService", `{}`, nil, ""},
		{"string for int", "VirtualService", `{"http":[{"route":[{"weight":"x"}]}]}`, nil, `spec.http[0].route[0].weight: Invalid value: "x": must be of type integer`},
		{"float for int", "VirtualService", `{"http":[{"route":[{"weight":1.5}]}]}`, nil, `must be of type integer`},
		{"int out of range", "VirtualService", `{"http":[{"route":[{"weight":4294967296}]}]}`, nil, `spec.http[0].route[0].weight`},
		{"object for list", "VirtualService", `{"hosts":{"a":1}}`, nil, `spec.hosts: Invalid value: "object": must be of type array`},
		{"bad enum", "ServiceEntry", `{"resolution":"MAYBE"}`, nil, `spec.resolution: Unsupported value: "MAYBE"`},
		{"bad duration", "VirtualService", `{"http":[{"timeout":"10 seconds"}]}`, nil, `spec.http[0].timeout: Invalid value: "10 seconds"`},
		{"wrapper type", "DestinationRule", `{"trafficPolicy":{"outlierDetection":{"consecutive5xxErrors":"five"}}}`, nil, `spec.trafficPolicy.outlierDetection.consecutive5xxErrors`},
		{"struct anything", "AuthorizationPolicy", `{"selector":{"matchLabels":{"a":"b"}}}`, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, unknown, err := decodeSpec(t, s, tc.kind, tc.spec)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(unknown, "|") != strings.Join(tc.unknown, "|") {
				t.Errorf("unknown %q, want %q", unknown, tc.unknown)
			}
		})
	}
}

func TestDeprecatedMapping(t *testing.T) {
	s := newScheme(t)
	obj, _, err := decodeSpec(t, s, "VirtualService", `{"hosts":["r"],"http":[{"fault":{"abort":{"percent":30,"httpStatus":500},"delay":{"percent":5,"fixedDelay":"1s"}},"route":[{"destination":{"host":"r"}}]}]}`)
	if err != nil {
		t.Fatal(err)
	}
	Default(obj)
	vs := obj.(*networkingv1.VirtualService)
	f := vs.Spec.Http[0].Fault
	if f.Abort.Percentage.GetValue() != 30 || f.Delay.Percentage.GetValue() != 5 || f.Delay.Percent != 0 { //nolint:staticcheck
		t.Errorf("fault: %v", f)
	}
	// The replacement wins over the deprecated field.
	obj, _, err = decodeSpec(t, s, "VirtualService", `{"hosts":["r"],"http":[{"fault":{"abort":{"percent":30,"percentage":{"value":1},"httpStatus":500}},"route":[{"destination":{"host":"r"}}]}]}`)
	if err != nil {
		t.Fatal(err)
	}
	if v := obj.(*networkingv1.VirtualService).Spec.Http[0].Fault.Abort.Percentage.GetValue(); v != 1 {
		t.Errorf("abort percentage %v, want 1", v)
	}
	obj, _, err = decodeSpec(t, s, "DestinationRule", `{"host":"r","subsets":[{"name":"v1","trafficPolicy":{"outlierDetection":{"consecutiveErrors":4}}}]}`)
	if err != nil {
		t.Fatal(err)
	}
	Default(obj)
	o := obj.(*networkingv1.DestinationRule).Spec.Subsets[0].TrafficPolicy.OutlierDetection
	if o.Consecutive_5XxErrors.GetValue() != 4 || o.ConsecutiveErrors != 0 { //nolint:staticcheck
		t.Errorf("outlier: %v", o)
	}
}

func TestConvert(t *testing.T) {
	s := newScheme(t)
	obj, _, err := decodeSpec(t, s, "AuthorizationPolicy", `{"action":"DENY","rules":[{"to":[{"operation":{"methods":["POST"]}}]}]}`)
	if err != nil {
		t.Fatal(err)
	}
	ap := obj.(*securityv1.AuthorizationPolicy)
	ap.Labels = map[string]string{"a": "b"}
	beta, err := Convert(s, ap, "v1beta1")
	if err != nil {
		t.Fatal(err)
	}
	if gvk := beta.GetObjectKind().GroupVersionKind(); gvk.Version != "v1beta1" || gvk.Kind != "AuthorizationPolicy" {
		t.Errorf("gvk %v", gvk)
	}
	back, err := Convert(s, beta, StorageVersion)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(ap)
	b, _ := json.Marshal(back)
	if string(a) != string(b) {
		t.Errorf("round trip:\n%s\n%s", a, b)
	}
	// The copy shares nothing.
	back.(*securityv1.AuthorizationPolicy).Spec.Rules[0].To[0].Operation.Methods[0] = "PUT"
	if ap.Spec.Rules[0].To[0].Operation.Methods[0] != "POST" {
		t.Error("conversion shares the spec")
	}
	if _, err := Convert(s, &networkingv1.VirtualService{}, "v2"); err == nil {
		t.Error("conversion to an unknown version succeeded")
	}
}
