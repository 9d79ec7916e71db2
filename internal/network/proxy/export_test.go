package proxy

// What the external tests (package proxy_test) use of the package's
// internals and in-package test helpers. Those tests cannot be in package
// proxy: they start an API server with testenv, which imports
// internal/daemon, which imports this package.

const (
	NodeName       = nodeName
	PrefixCluster  = prefixCluster
	BenchServices  = benchServices
	BenchEndpoints = benchEndpoints
)

type SvcOpt = svcOpt

var (
	Service       = service
	BenchService  = benchService
	BenchEndpoint = benchEndpoint
	HeapInUse     = heapInUse
	ScratchNetNS  = scratchNetNS
	Nft           = nft
	Comparable    = comparable
	ChainName     = chainName
	SpreadMapName = spreadMapName
)

func Ptr[T any](v T) *T { return ptr(v) }
