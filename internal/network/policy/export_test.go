package policy

import "testing"

// Test-only exports for the external tests (package policy_test: the lab
// and the API benchmark), which use testenv and so cannot be in this
// package: testenv imports the daemon, which imports this package.

var (
	RequireLab = requireLab
	BenchWorld = benchWorld
	ShortHash  = shortHash
	AddrBytes  = addrBytes
)

// KernelNS makes a network namespace for the Enforcer's table, removed at
// the end of the test, and returns its path.
func KernelNS(t testing.TB) string {
	t.Helper()
	_, path := kernelNS(t)
	return path
}
