package proxy

// Flags are a request's response flags, Envoy's RESPONSE_FLAGS: why an
// answer is not simply the upstream's.
type Flags uint32

const (
	// FlagNoRoute (NR): no virtual host or route matched.
	FlagNoRoute Flags = 1 << iota
	// FlagNoHealthyUpstream (UH): the cluster had no endpoint.
	FlagNoHealthyUpstream
	// FlagUpstreamConnectionFailure (UF): connecting to the endpoint
	// failed.
	FlagUpstreamConnectionFailure
	// FlagUpstreamRequestTimeout (UT): a route or per-try timeout expired.
	FlagUpstreamRequestTimeout
	// FlagUpstreamRetryLimitExceeded (URX): retries were used up.
	FlagUpstreamRetryLimitExceeded
	// FlagUpstreamConnectionTermination (UC): the upstream closed or
	// reset the connection.
	FlagUpstreamConnectionTermination
	// FlagDownstreamConnectionTermination (DC): the client went away.
	FlagDownstreamConnectionTermination
	// FlagUpstreamOverflow (UO): a circuit breaker refused the request.
	FlagUpstreamOverflow
	// FlagNoClusterFound (NC): the route's cluster does not exist.
	FlagNoClusterFound
	// FlagDelayInjected (DI) and FlagFaultInjected (FI): fault injection.
	FlagDelayInjected
	FlagFaultInjected
	// FlagRateLimited (RL).
	FlagRateLimited
	// FlagUnauthorized (UAEX): an authorization filter denied the request.
	FlagUnauthorized
)

var flagNames = [...]string{"NR", "UH", "UF", "UT", "URX", "UC", "DC", "UO", "NC", "DI", "FI", "RL", "UAEX"}

// String gives the flags as Envoy prints them: comma-separated short
// names, or "-" for none.
func (f Flags) String() string {
	if f == 0 {
		return "-"
	}
	return string(f.Append(nil))
}

// Append appends the String form to b without allocating.
func (f Flags) Append(b []byte) []byte {
	if f == 0 {
		return append(b, '-')
	}
	first := true
	for i, name := range flagNames {
		if f&(1<<i) == 0 {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		b = append(b, name...)
		first = false
	}
	return b
}

// Has reports whether all of g are set.
func (f Flags) Has(g Flags) bool { return f&g == g }
