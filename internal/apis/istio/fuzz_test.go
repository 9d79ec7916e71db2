package istio

import (
	"encoding/json"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
)

// FuzzDecodeValidate feeds arbitrary JSON through what the API server does
// with a request body of an Istio kind (PreDecode, decoding, defaults,
// validation, conversion to every served version): nothing may panic.
//
//	go test ./internal/apis/istio -run '^$' -fuzz FuzzDecodeValidate -fuzztime 60s
func FuzzDecodeValidate(f *testing.F) {
	s := newScheme(f)
	var kinds []schema.GroupKind
	for _, g := range []string{NetworkingGroup, SecurityGroup} {
		for _, k := range Kinds[g] {
			kinds = append(kinds, schema.GroupKind{Group: g, Kind: k})
		}
	}
	for i, spec := range []string{
		`{"hosts":["reviews"],"http":[{"match":[{"headers":{"end-user":{"exact":"tester"}}}],"route":[{"destination":{"host":"reviews","subset":"v2"}}]},{"route":[{"destination":{"host":"reviews","subset":"v1"},"weight":80},{"destination":{"host":"reviews","subset":"v2"},"weight":20}],"fault":{"abort":{"percent":5,"httpStatus":503},"delay":{"percent":3,"fixedDelay":"1s"}}}]}`,
		`{"host":"reviews","trafficPolicy":{"connectionPool":{"tcp":{"maxConnections":100}},"outlierDetection":{"consecutiveErrors":5,"interval":"10s"}},"subsets":[{"name":"v1","labels":{"version":"v1"}}]}`,
		`{"selector":{"istio":"ingressgateway"},"servers":[{"port":{"number":80,"name":"http","protocol":"HTTP"},"hosts":["*"]}]}`,
		`{"hosts":["httpbin.org"],"ports":[{"number":80,"name":"http","protocol":"HTTP"}],"resolution":"DNS","endpoints":[{"address":"x","ports":{"http":80}}]}`,
		`{"egress":[{"hosts":["./*"]}],"ingress":[{"port":{"number":9080}}]}`,
		`{"mtls":{"mode":"STRICT"},"portLevelMtls":{"80":{"mode":"DISABLE"}}}`,
		`{"action":"DENY","rules":[{"from":[{"source":{"ipBlocks":["1.2.3.4/8"]}}],"to":[{"operation":{"methods":["POST"],"ports":["80"]}}],"when":[{"key":"k","values":["v"]}]}]}`,
		`{"jwtRules":[{"issuer":"i","jwksUri":"https://x/j","jwks":"{}","fromHeaders":[{"name":"a"}]}]}`,
	} {
		f.Add(uint8(i), []byte(spec))
	}
	f.Fuzz(func(t *testing.T, k uint8, spec []byte) {
		gk := kinds[int(k)%len(kinds)]
		data := append(append([]byte(`{"metadata":{"name":"x"},"spec":`), spec...), '}')
		out, _, err := PreDecode(s, gk, data)
		if err != nil {
			return
		}
		obj, err := s.New(gk.WithVersion(StorageVersion))
		if err != nil {
			t.Fatal(err)
		}
		if json.Unmarshal(out, obj) != nil {
			return
		}
		Default(obj)
		ValidateCreate(obj)
		ValidateUpdate(obj, obj.DeepCopyObject())
		for _, v := range Versions[gk.Group] {
			served, err := Convert(s, obj, v)
			if err != nil {
				t.Fatalf("convert to %s: %v", v, err)
			}
			if _, err := json.Marshal(served); err != nil {
				t.Fatalf("encode %s: %v", v, err)
			}
		}
	})
}
