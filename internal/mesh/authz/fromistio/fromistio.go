// Package fromistio translates Istio's security objects
// (AuthorizationPolicy, RequestAuthentication, PeerAuthentication) into
// what one workload's sidecar enforces. The node's mesh server
// (internal/mesh/control) calls it; the sidecar never imports it.
package fromistio

import (
	"cmp"
	"fmt"
	"slices"

	securityapi "istio.io/api/security/v1beta1"
	typeapi "istio.io/api/type/v1beta1"
	securityv1 "istio.io/client-go/pkg/apis/security/v1"

	"skiff.dev/skiff/internal/mesh/authz"
)

// DefaultRootNamespace is Istio's default root namespace, whose
// policies apply to every workload of the mesh.
const DefaultRootNamespace = "istio-system"

// dryRunAnnotation makes a policy evaluated and logged, not enforced.
const dryRunAnnotation = "istio.io/dry-run"

// ForWorkload computes the authz.Config of the workload with podLabels
// in namespace ns from every AuthorizationPolicy and
// RequestAuthentication in the cluster (the function selects those that
// apply: the root namespace's (rootNamespace, "" for istio-system), the
// namespace's, and of those the ones whose selector matches; policies
// with targetRef(s) are for waypoints and gateways and are left out
// with an error). Rules it cannot use are reported in errs and left out
// as Istio does — except in DENY policies, where an unusable condition
// is dropped and an unusable rule becomes "match everything", so that a
// DENY denies at least what it meant to. CUSTOM policies are not
// supported: they become DENY (failing closed) and are reported.
func ForWorkload(ns string, podLabels map[string]string, rootNamespace string,
	aps []*securityv1.AuthorizationPolicy, ras []*securityv1.RequestAuthentication) (cfg authz.Config, errs []error) {
	if rootNamespace == "" {
		rootNamespace = DefaultRootNamespace
	}
	var selected []*securityv1.AuthorizationPolicy
	for _, ap := range aps {
		if ap == nil || !inScope(ap.Namespace, ns, rootNamespace) {
			continue
		}
		if len(ap.Spec.TargetRefs) > 0 || ap.Spec.TargetRef != nil {
			errs = append(errs, fmt.Errorf("authorizationpolicy %s/%s: targetRefs apply to waypoints and gateways, not sidecars: ignored", ap.Namespace, ap.Name))
			continue
		}
		if !selects(ap.Spec.Selector, podLabels) {
			continue
		}
		selected = append(selected, ap)
	}
	slices.SortFunc(selected, func(a, b *securityv1.AuthorizationPolicy) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	for _, ap := range selected {
		p, perrs := translatePolicy(ap)
		cfg.Policies = append(cfg.Policies, p)
		errs = append(errs, perrs...)
	}

	var selectedRA []*securityv1.RequestAuthentication
	for _, ra := range ras {
		if ra == nil || !inScope(ra.Namespace, ns, rootNamespace) {
			continue
		}
		if len(ra.Spec.TargetRefs) > 0 || ra.Spec.TargetRef != nil {
			errs = append(errs, fmt.Errorf("requestauthentication %s/%s: targetRefs apply to waypoints and gateways, not sidecars: ignored", ra.Namespace, ra.Name))
			continue
		}
		if !selects(ra.Spec.Selector, podLabels) {
			continue
		}
		selectedRA = append(selectedRA, ra)
	}
	slices.SortFunc(selectedRA, func(a, b *securityv1.RequestAuthentication) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name))
	})
	for _, ra := range selectedRA {
		for i, jr := range ra.Spec.JwtRules {
			if jr == nil {
				continue
			}
			r := translateJWTRule(jr)
			if err := authz.ValidateJWTRule(r); err != nil {
				errs = append(errs, fmt.Errorf("requestauthentication %s/%s jwtRules %d: %w: rule left out", ra.Namespace, ra.Name, i, err))
				continue
			}
			cfg.JWT = append(cfg.JWT, r)
		}
	}
	return cfg, errs
}

// inScope reports whether an object in objNS can apply to workloads in
// ns.
func inScope(objNS, ns, root string) bool { return objNS == ns || objNS == root }

// selects reports whether sel (nil or empty: every workload) matches
// labels.
func selects(sel *typeapi.WorkloadSelector, labels map[string]string) bool {
	if sel == nil {
		return true
	}
	for k, v := range sel.MatchLabels {
		if got, ok := labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

func translatePolicy(ap *securityv1.AuthorizationPolicy) (authz.Policy, []error) {
	var errs []error
	ref := ap.Namespace + "/" + ap.Name
	p := authz.Policy{Namespace: ap.Namespace, Name: ap.Name, DryRun: ap.Annotations[dryRunAnnotation] == "true"}
	switch ap.Spec.Action {
	case securityapi.AuthorizationPolicy_ALLOW:
		p.Action = authz.Allow
	case securityapi.AuthorizationPolicy_DENY:
		p.Action = authz.Deny
	case securityapi.AuthorizationPolicy_AUDIT:
		p.Action = authz.Audit
	case securityapi.AuthorizationPolicy_CUSTOM:
		p.Action = authz.Deny
		errs = append(errs, fmt.Errorf("authorizationpolicy %s: action CUSTOM (external authorization) is not supported: the requests it selects are denied", ref))
	default:
		p.Action = authz.Deny
		errs = append(errs, fmt.Errorf("authorizationpolicy %s: unknown action %v: the requests it selects are denied", ref, ap.Spec.Action))
	}
	for i, r := range ap.Spec.Rules {
		if r == nil {
			errs = append(errs, fmt.Errorf("authorizationpolicy %s rule %d: empty rule left out", ref, i))
			continue
		}
		rule := translateRule(r)
		err := authz.ValidateRule(rule, ap.Namespace)
		if err == nil {
			p.Rules = append(p.Rules, rule)
			continue
		}
		if p.Action != authz.Deny {
			errs = append(errs, fmt.Errorf("authorizationpolicy %s rule %d: %w: rule left out", ref, i, err))
			continue
		}
		// A DENY rule fails closed: drop what cannot be checked.
		var when []authz.Condition
		for _, c := range rule.When {
			if authz.ValidateCondition(c, ap.Namespace) == nil {
				when = append(when, c)
			}
		}
		rule.When = when
		if authz.ValidateRule(rule, ap.Namespace) != nil {
			rule = authz.Rule{}
			errs = append(errs, fmt.Errorf("authorizationpolicy %s rule %d: %w: the DENY rule now matches every request", ref, i, err))
		} else {
			errs = append(errs, fmt.Errorf("authorizationpolicy %s rule %d: %w: conditions left out, the DENY rule matches more", ref, i, err))
		}
		p.Rules = append(p.Rules, rule)
	}
	return p, errs
}

func translateRule(r *securityapi.Rule) authz.Rule {
	var out authz.Rule
	for _, f := range r.From {
		s := f.GetSource()
		if s == nil {
			s = &securityapi.Source{}
		}
		out.From = append(out.From, authz.Source{
			Principals: s.Principals, NotPrincipals: s.NotPrincipals,
			RequestPrincipals: s.RequestPrincipals, NotRequestPrincipals: s.NotRequestPrincipals,
			Namespaces: s.Namespaces, NotNamespaces: s.NotNamespaces,
			ServiceAccounts: s.ServiceAccounts, NotServiceAccounts: s.NotServiceAccounts,
			TrustDomains: s.TrustDomains, NotTrustDomains: s.NotTrustDomains,
			IPBlocks: s.IpBlocks, NotIPBlocks: s.NotIpBlocks,
			RemoteIPBlocks: s.RemoteIpBlocks, NotRemoteIPBlocks: s.NotRemoteIpBlocks,
		})
	}
	for _, t := range r.To {
		o := t.GetOperation()
		if o == nil {
			o = &securityapi.Operation{}
		}
		out.To = append(out.To, authz.Operation{
			Hosts: o.Hosts, NotHosts: o.NotHosts, Ports: o.Ports, NotPorts: o.NotPorts,
			Methods: o.Methods, NotMethods: o.NotMethods, Paths: o.Paths, NotPaths: o.NotPaths,
		})
	}
	for _, c := range r.When {
		if c == nil {
			continue
		}
		out.When = append(out.When, authz.Condition{Key: c.Key, Values: c.Values, NotValues: c.NotValues})
	}
	return out
}

func translateJWTRule(jr *securityapi.JWTRule) authz.JWTRule {
	r := authz.JWTRule{
		Issuer: jr.Issuer, Audiences: jr.Audiences, JWKS: jr.Jwks, JWKSURI: jr.JwksUri,
		FromParams: jr.FromParams, FromCookies: jr.FromCookies,
		OutputPayloadToHeader: jr.OutputPayloadToHeader, ForwardOriginalToken: jr.ForwardOriginalToken,
		SpaceDelimitedClaims: jr.SpaceDelimitedClaims,
		Required:             jr.Presence == securityapi.JWTRule_REQUIRED,
	}
	for _, h := range jr.FromHeaders {
		if h != nil {
			r.FromHeaders = append(r.FromHeaders, authz.JWTHeader{Name: h.Name, Prefix: h.Prefix})
		}
	}
	for _, c := range jr.OutputClaimToHeaders {
		if c != nil {
			r.OutputClaimToHeaders = append(r.OutputClaimToHeaders, authz.ClaimToHeader{Header: c.Header, Claim: c.Claim})
		}
	}
	return r
}
