package istio

import (
	"encoding/json"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	security "istio.io/api/security/v1beta1"
	typev1beta1 "istio.io/api/type/v1beta1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// The rules follow istio/istio pkg/config/validation
// (ValidatePeerAuthentication, ValidateAuthorizationPolicy,
// ValidateRequestAuthentication).

func validatePolicySelector(sel *typev1beta1.WorkloadSelector, ref *typev1beta1.PolicyTargetReference, refs []*typev1beta1.PolicyTargetReference) field.ErrorList {
	var errs field.ErrorList
	set := 0
	if sel != nil {
		set++
		errs = append(errs, validateLabels(sel.MatchLabels, specPath.Child("selector", "matchLabels"))...)
	}
	if ref != nil {
		set++
		errs = append(errs, validateTargetRef(ref, specPath.Child("targetRef"))...)
	}
	if len(refs) > 0 {
		set++
		for i, r := range refs {
			errs = append(errs, validateTargetRef(r, specPath.Child("targetRefs").Index(i))...)
		}
	}
	if set > 1 {
		errs = append(errs, field.Invalid(specPath, "", "only one of selector, targetRef or targetRefs can be set"))
	}
	return errs
}

func validateTargetRef(r *typev1beta1.PolicyTargetReference, p *field.Path) field.ErrorList {
	if r == nil {
		return field.ErrorList{field.Required(p, "target reference may not be null")}
	}
	var errs field.ErrorList
	if r.Kind == "" {
		errs = append(errs, field.Required(p.Child("kind"), "kind must be set"))
	}
	if r.Name == "" {
		errs = append(errs, field.Required(p.Child("name"), "name must be set"))
	}
	return errs
}

func validatePeerAuthentication(pa *security.PeerAuthentication) field.ErrorList {
	p := specPath
	var errs field.ErrorList
	if pa.Selector != nil {
		errs = append(errs, validateLabels(pa.Selector.MatchLabels, p.Child("selector", "matchLabels"))...)
	}
	if len(pa.PortLevelMtls) > 0 {
		if pa.Selector == nil || len(pa.Selector.MatchLabels) == 0 {
			errs = append(errs, field.Forbidden(p.Child("portLevelMtls"), "mesh/namespace peer authentication cannot have port level mTLS"))
		}
		for port, m := range pa.PortLevelMtls {
			pp := p.Child("portLevelMtls").Key(strconv.FormatUint(uint64(port), 10))
			errs = append(errs, validatePort(port, pp)...)
			if m == nil {
				errs = append(errs, field.Required(pp, "port level mTLS may not be null"))
			}
		}
	}
	return errs
}

func validateAuthorizationPolicy(ap *security.AuthorizationPolicy) field.ErrorList {
	p := specPath
	errs := validatePolicySelector(ap.Selector, ap.TargetRef, ap.TargetRefs)
	provider := ap.GetProvider()
	switch ap.Action {
	case security.AuthorizationPolicy_CUSTOM:
		if ap.Rules == nil {
			errs = append(errs, field.Required(p.Child("rules"), "CUSTOM action without rules is meaningless as it will never be triggered, add an empty rule {} if you want it be triggered for every request"))
		} else if provider.GetName() == "" {
			errs = append(errs, field.Required(p.Child("provider", "name"), "CUSTOM action needs a provider name"))
		}
	case security.AuthorizationPolicy_DENY:
		if ap.Rules == nil {
			errs = append(errs, field.Required(p.Child("rules"), "DENY action without rules is meaningless as it will never be triggered, add an empty rule {} if you want it be triggered for every request"))
		}
	}
	if provider != nil && ap.Action != security.AuthorizationPolicy_CUSTOM {
		errs = append(errs, field.Forbidden(p.Child("provider"), "provider must not be set with non CUSTOM action, found "+ap.Action.String()))
	}
	for i, r := range ap.Rules {
		rp := p.Child("rules").Index(i)
		if r == nil {
			errs = append(errs, field.Required(rp, "rule may not be null"))
			continue
		}
		if r.From != nil && len(r.From) == 0 {
			errs = append(errs, field.Required(rp.Child("from"), "from must not be empty"))
		}
		for j, f := range r.From {
			fp := rp.Child("from").Index(j).Child("source")
			if f == nil || f.Source == nil {
				errs = append(errs, field.Required(fp, "from.source must not be null"))
				continue
			}
			errs = append(errs, validateSource(f.Source, fp)...)
		}
		if r.To != nil && len(r.To) == 0 {
			errs = append(errs, field.Required(rp.Child("to"), "to must not be empty"))
		}
		for j, t := range r.To {
			op := rp.Child("to").Index(j).Child("operation")
			if t == nil || t.Operation == nil {
				errs = append(errs, field.Required(op, "to.operation must not be null"))
				continue
			}
			errs = append(errs, validateOperation(t.Operation, op)...)
		}
		for j, c := range r.When {
			cp := rp.Child("when").Index(j)
			if c == nil {
				errs = append(errs, field.Required(cp, "condition may not be null"))
				continue
			}
			if c.Key == "" {
				errs = append(errs, field.Required(cp.Child("key"), "key must not be empty"))
			} else if len(c.Values) == 0 && len(c.NotValues) == 0 {
				errs = append(errs, field.Required(cp.Child("values"), "at least one of values or notValues must be set for key "+c.Key))
			}
		}
	}
	return errs
}

// valueList is one of a rule's string lists and how its values are checked
// (check returns what is wrong with a value, or "").
type valueList struct {
	name  string
	vals  []string
	check func(string) string
}

// validateLists checks every value of lists (none may be empty) and
// returns how many values there were.
func validateLists(p *field.Path, lists []valueList) (int, field.ErrorList) {
	var errs field.ErrorList
	set := 0
	for _, l := range lists {
		set += len(l.vals)
		for i, v := range l.vals {
			vp := p.Child(l.name).Index(i)
			if v == "" {
				errs = append(errs, field.Required(vp, "value must not be empty"))
			} else if l.check != nil {
				if msg := l.check(v); msg != "" {
					errs = append(errs, field.Invalid(vp, v, msg))
				}
			}
		}
	}
	return set, errs
}

func checkIPOrCIDR(v string) string {
	if _, err := netip.ParsePrefix(v); err == nil {
		return ""
	}
	if _, err := netip.ParseAddr(v); err == nil {
		return ""
	}
	return "must be an IP address or CIDR"
}

func checkPort(v string) string {
	if n, err := strconv.Atoi(v); err != nil || n < 0 || n > 65535 {
		return "must be a port number in the range 0..65535"
	}
	return ""
}

func validateSource(s *security.Source, p *field.Path) field.ErrorList {
	set, errs := validateLists(p, []valueList{
		{"principals", s.Principals, nil}, {"notPrincipals", s.NotPrincipals, nil},
		{"requestPrincipals", s.RequestPrincipals, nil}, {"notRequestPrincipals", s.NotRequestPrincipals, nil},
		{"namespaces", s.Namespaces, nil}, {"notNamespaces", s.NotNamespaces, nil},
		{"serviceAccounts", s.ServiceAccounts, nil}, {"notServiceAccounts", s.NotServiceAccounts, nil},
		{"ipBlocks", s.IpBlocks, checkIPOrCIDR}, {"notIpBlocks", s.NotIpBlocks, checkIPOrCIDR},
		{"remoteIpBlocks", s.RemoteIpBlocks, checkIPOrCIDR}, {"notRemoteIpBlocks", s.NotRemoteIpBlocks, checkIPOrCIDR},
	})
	if set == 0 && len(s.TrustDomains)+len(s.NotTrustDomains) == 0 {
		errs = append(errs, field.Required(p, "from.source must not be empty"))
	}
	if len(s.Principals)+len(s.NotPrincipals)+len(s.Namespaces)+len(s.NotNamespaces) > 0 && len(s.ServiceAccounts)+len(s.NotServiceAccounts) > 0 {
		errs = append(errs, field.Forbidden(p.Child("serviceAccounts"), "cannot set serviceAccounts with namespaces or principals"))
	}
	return errs
}

func validateOperation(o *security.Operation, p *field.Path) field.ErrorList {
	set, errs := validateLists(p, []valueList{
		{"hosts", o.Hosts, nil}, {"notHosts", o.NotHosts, nil},
		{"ports", o.Ports, checkPort}, {"notPorts", o.NotPorts, checkPort},
		{"methods", o.Methods, nil}, {"notMethods", o.NotMethods, nil},
		{"paths", o.Paths, nil}, {"notPaths", o.NotPaths, nil},
	})
	if set == 0 {
		errs = append(errs, field.Required(p, "to.operation must not be empty"))
	}
	return errs
}

func validateRequestAuthentication(ra *security.RequestAuthentication) field.ErrorList {
	p := specPath
	errs := validatePolicySelector(ra.Selector, ra.TargetRef, ra.TargetRefs)
	for i, r := range ra.JwtRules {
		rp := p.Child("jwtRules").Index(i)
		if r == nil {
			errs = append(errs, field.Required(rp, "jwt rule may not be null"))
			continue
		}
		if r.Issuer == "" && r.JwksUri == "" {
			errs = append(errs, field.Required(rp.Child("issuer"), "issuer or jwksUri must be non-empty string"))
		}
		for j, a := range r.Audiences {
			if a == "" {
				errs = append(errs, field.Required(rp.Child("audiences").Index(j), "audience must be non-empty string"))
			}
		}
		if r.JwksUri != "" {
			if u, err := url.Parse(r.JwksUri); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				errs = append(errs, field.Invalid(rp.Child("jwksUri"), r.JwksUri, "must be an http or https URL"))
			}
		}
		if r.Jwks != "" {
			var set struct {
				Keys []json.RawMessage `json:"keys"`
			}
			if err := json.Unmarshal([]byte(r.Jwks), &set); err != nil {
				errs = append(errs, field.Invalid(rp.Child("jwks"), "<jwks>", "jwks parse error: "+err.Error()))
			}
		}
		for j, h := range r.FromHeaders {
			if h == nil || strings.TrimSpace(h.Name) == "" {
				errs = append(errs, field.Required(rp.Child("fromHeaders").Index(j).Child("name"), "location header name must be non-empty string"))
			}
		}
		for j, q := range r.FromParams {
			if q == "" {
				errs = append(errs, field.Required(rp.Child("fromParams").Index(j), "location query must be non-empty string"))
			}
		}
	}
	return errs
}
