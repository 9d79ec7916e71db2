package control

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"reflect"

	"skiff.dev/skiff/internal/mesh/meshconfig"
)

// encode returns doc's JSON encoding with its versions set, and the
// version: a hash of everything else. encoded are clusters' encodings by
// name, shared between proxies (the others are encoded here). The
// encoding is put together field by field in the order and with the
// omissions of meshconfig.Sidecar and proxy.Config (TestEncodeMatchesJSON
// keeps the two in step), so that shared parts are copied instead of
// encoded again.
func encode(doc *meshconfig.Sidecar, encoded map[string][]byte) (body []byte, version string, err error) {
	workload, err := json.Marshal(doc.Workload)
	if err != nil {
		return nil, "", err
	}
	var proxyParts [][]byte // the proxy object's fields after its version
	field := func(name string, v any, omit bool) {
		if omit || err != nil {
			return
		}
		var b []byte
		if b, err = json.Marshal(v); err == nil {
			proxyParts = append(proxyParts, []byte(`,"`+name+`":`), b)
		}
	}
	pc := &doc.Proxy
	field("listeners", pc.Listeners, len(pc.Listeners) == 0)
	field("routeTables", pc.RouteTables, len(pc.RouteTables) == 0)
	if err != nil {
		return nil, "", err
	}
	if len(pc.Clusters) > 0 {
		proxyParts = append(proxyParts, []byte(`,"clusters":[`))
		for i := range pc.Clusters {
			c := &pc.Clusters[i]
			raw := encoded[c.Name]
			if raw == nil {
				if raw, err = json.Marshal(c); err != nil {
					return nil, "", err
				}
			}
			if i > 0 {
				proxyParts = append(proxyParts, []byte(","))
			}
			proxyParts = append(proxyParts, raw)
		}
		proxyParts = append(proxyParts, []byte("]"))
	}
	field("certificates", pc.Certificates, len(pc.Certificates) == 0)
	field("identity", pc.Identity, pc.Identity == nil)
	var authz []byte
	if !reflect.ValueOf(doc.Authz).IsZero() && err == nil {
		authz, err = json.Marshal(doc.Authz)
	}
	if err != nil {
		return nil, "", err
	}

	h := sha256.New()
	h.Write(workload)
	n := len(workload) + len(authz)
	for _, p := range proxyParts {
		h.Write(p)
		n += len(p)
	}
	h.Write(authz)
	version = hex.EncodeToString(h.Sum(nil)[:8])

	out := make([]byte, 0, n+2*len(version)+64)
	out = append(out, `{"version":"`+version+`","workload":`...)
	out = append(out, workload...)
	out = append(out, `,"proxy":{"version":"`+version+`"`...)
	for _, p := range proxyParts {
		out = append(out, p...)
	}
	out = append(out, '}')
	if authz != nil {
		out = append(out, `,"authz":`...)
		out = append(out, authz...)
	}
	out = append(out, '}')
	return out, version, nil
}

// Version is a hash of everything in doc but its version fields (the
// version Translate gives it).
func Version(doc *meshconfig.Sidecar) string {
	_, v, err := encode(doc, nil)
	if err != nil {
		return "invalid"
	}
	return v
}
