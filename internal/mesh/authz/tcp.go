package authz

import "strings"

// Istio enforces AuthorizationPolicy on plain TCP connections too (its
// RBAC network filter). A TCP connection has no method, path, host,
// headers or JWT, so rules that use them change meaning: an ALLOW rule
// with any HTTP-only field is left out (allows less), a DENY or AUDIT
// rule loses just those fields (denies more).

// tcpRule is r as it applies to TCP connections; ok is false when the
// rule does not apply at all.
func tcpRule(r Rule, action Action) (out Rule, ok bool) {
	strict := action == Allow
	for _, s := range r.From {
		if len(s.RequestPrincipals)+len(s.NotRequestPrincipals) > 0 {
			if strict {
				return Rule{}, false
			}
			s.RequestPrincipals, s.NotRequestPrincipals = nil, nil
		}
		out.From = append(out.From, s)
	}
	for _, o := range r.To {
		if len(o.Hosts)+len(o.NotHosts)+len(o.Methods)+len(o.NotMethods)+len(o.Paths)+len(o.NotPaths) > 0 {
			if strict {
				return Rule{}, false
			}
			o = Operation{Ports: o.Ports, NotPorts: o.NotPorts}
		}
		out.To = append(out.To, o)
	}
	for _, c := range r.When {
		if strings.HasPrefix(c.Key, "request.") {
			if strict {
				return Rule{}, false
			}
			continue
		}
		out.When = append(out.When, c)
	}
	return out, true
}

// CheckConn decides a TCP connection (Method, Path, Host, Headers and
// Auth are ignored) by the same order as Check, with Istio's TCP
// meaning of rules that use HTTP-only fields. A TCP chain's proxy calls
// it once per inbound connection; a denial closes the connection.
func (e *Engine) CheckConn(r *Request) Decision {
	conn := *r
	conn.Method, conn.Path, conn.Host, conn.Headers, conn.Auth = "", "", "", nil, nil
	return e.check(&conn, true)
}
