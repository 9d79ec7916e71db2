// Package authz evaluates Istio's AuthorizationPolicy and
// RequestAuthentication for a sidecar's inbound requests.
//
// The node's mesh server computes a workload's Config (package
// fromistio translates Istio's objects into it) and ships it as JSON in
// the sidecar's document; the sidecar builds an Engine from it (New) and
// puts Middleware in its proxy's chain. This package must stay free of
// Istio and Kubernetes imports: the sidecar binary links it.
//
// Evaluation follows Istio's documented order: request authentication
// (JWT) first — a token that fails answers 401 —, then CUSTOM policies
// (not supported: New rejects them), DENY policies (any match denies),
// ALLOW policies (when a workload has any, a request must match one),
// and AUDIT policies, which are only logged.
package authz

// Config is one workload's authorization and request authentication,
// as the node computes it from Istio's objects and ships it in the
// sidecar's document (JSON). The zero Config allows everything.
type Config struct {
	// Policies are AuthorizationPolicies, in any order (the action
	// decides when each is evaluated).
	Policies []Policy `json:"policies,omitempty"`
	// JWT are the jwtRules of every RequestAuthentication that applies.
	JWT []JWTRule `json:"jwt,omitempty"`
}

// Action is an AuthorizationPolicy's action.
type Action string

const (
	// Allow (also the empty string) lets matching requests through;
	// when a workload has ALLOW policies, a request must match one.
	Allow Action = "ALLOW"
	// Deny rejects matching requests; it beats Allow.
	Deny Action = "DENY"
	// Audit logs matching requests and decides nothing.
	Audit Action = "AUDIT"
	// Custom delegates to an external authorizer: not supported (New
	// rejects it; fromistio turns it into Deny so that it fails closed).
	Custom Action = "CUSTOM"
)

// Policy is one AuthorizationPolicy. It matches a request when any of
// its rules does; a policy without rules matches nothing (so an ALLOW
// policy without rules, Istio's "allow-nothing", denies everything),
// and a rule without from, to and when matches every request.
type Policy struct {
	// Namespace and Name identify the policy in logs. Namespace is
	// also the default namespace of serviceAccounts values.
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
	Action    Action `json:"action,omitempty"`
	Rules     []Rule `json:"rules,omitempty"`
	// DryRun (annotation istio.io/dry-run) evaluates and logs the
	// policy without enforcing it.
	DryRun bool `json:"dryRun,omitempty"`
}

// Rule matches a request when one of From (or From is empty), one of To
// (or To is empty) and every When match.
type Rule struct {
	From []Source    `json:"from,omitempty"`
	To   []Operation `json:"to,omitempty"`
	When []Condition `json:"when,omitempty"`
}

// Source is Istio's Source: each field given must match (a field
// matches when one of its values does; a Not field when none does).
// Values use Istio's syntax: "abc" exact, "abc*" prefix, "*abc" suffix,
// "*" any non-empty value; IP blocks are addresses or CIDRs.
type Source struct {
	Principals           []string `json:"principals,omitempty"`
	NotPrincipals        []string `json:"notPrincipals,omitempty"`
	RequestPrincipals    []string `json:"requestPrincipals,omitempty"`
	NotRequestPrincipals []string `json:"notRequestPrincipals,omitempty"`
	Namespaces           []string `json:"namespaces,omitempty"`
	NotNamespaces        []string `json:"notNamespaces,omitempty"`
	ServiceAccounts      []string `json:"serviceAccounts,omitempty"`
	NotServiceAccounts   []string `json:"notServiceAccounts,omitempty"`
	TrustDomains         []string `json:"trustDomains,omitempty"`
	NotTrustDomains      []string `json:"notTrustDomains,omitempty"`
	IPBlocks             []string `json:"ipBlocks,omitempty"`
	NotIPBlocks          []string `json:"notIpBlocks,omitempty"`
	RemoteIPBlocks       []string `json:"remoteIpBlocks,omitempty"`
	NotRemoteIPBlocks    []string `json:"notRemoteIpBlocks,omitempty"`
}

// Operation is Istio's Operation, with Source's matching rules. Hosts
// match the request's authority case-insensitively; paths match the
// normalised path without its query and may hold the templates "{*}"
// (one segment) and "{**}" (the rest of the path); ports are numbers.
type Operation struct {
	Hosts      []string `json:"hosts,omitempty"`
	NotHosts   []string `json:"notHosts,omitempty"`
	Ports      []string `json:"ports,omitempty"`
	NotPorts   []string `json:"notPorts,omitempty"`
	Methods    []string `json:"methods,omitempty"`
	NotMethods []string `json:"notMethods,omitempty"`
	Paths      []string `json:"paths,omitempty"`
	NotPaths   []string `json:"notPaths,omitempty"`
}

// Condition is one of a rule's when clauses: Key is an Istio attribute
// (request.headers[NAME], source.ip, remote.ip, source.namespace,
// source.principal, source.serviceAccount, source.trustDomain,
// request.auth.principal, request.auth.audiences,
// request.auth.presenter, request.auth.claims[NAME] (nested:
// [a][b]), destination.ip, destination.port, connection.sni).
type Condition struct {
	Key       string   `json:"key"`
	Values    []string `json:"values,omitempty"`
	NotValues []string `json:"notValues,omitempty"`
}

// JWTRule is one of RequestAuthentication's jwtRules.
type JWTRule struct {
	Issuer    string   `json:"issuer"`
	Audiences []string `json:"audiences,omitempty"`
	// JWKS is the key set inline (JSON); otherwise JWKSURI is fetched
	// (lazily, cached for JWKSCacheDuration).
	JWKS    string `json:"jwks,omitempty"`
	JWKSURI string `json:"jwksUri,omitempty"`
	// FromHeaders and FromParams are where the token is looked for;
	// when both (and FromCookies) are empty: "Authorization: Bearer" and
	// the query parameter access_token.
	FromHeaders []JWTHeader `json:"fromHeaders,omitempty"`
	FromParams  []string    `json:"fromParams,omitempty"`
	FromCookies []string    `json:"fromCookies,omitempty"`
	// OutputPayloadToHeader names a header that gets the verified
	// token's payload (base64url JSON).
	OutputPayloadToHeader string `json:"outputPayloadToHeader,omitempty"`
	// OutputClaimToHeaders copies claims into headers.
	OutputClaimToHeaders []ClaimToHeader `json:"outputClaimToHeaders,omitempty"`
	// ForwardOriginalToken keeps the token's header in the request sent
	// to the workload (it is removed otherwise).
	ForwardOriginalToken bool `json:"forwardOriginalToken,omitempty"`
	// SpaceDelimitedClaims are claims whose string value is also
	// matched word by word (always so for "scope" and "permission").
	SpaceDelimitedClaims []string `json:"spaceDelimitedClaims,omitempty"`
	// Required (presence REQUIRED) rejects requests without a valid
	// token of this rule (401 "Jwt is missing").
	Required bool `json:"required,omitempty"`
}

// JWTHeader is a header that carries a token after Prefix (e.g.
// "Bearer ").
type JWTHeader struct {
	Name   string `json:"name"`
	Prefix string `json:"prefix,omitempty"`
}

// ClaimToHeader copies a (string, number or boolean) claim into a
// request header.
type ClaimToHeader struct {
	Header string `json:"header"`
	Claim  string `json:"claim"`
}
