// Package capturetest tests the proxy's capture listeners (package
// proxy's Listener.Capture) for real: as root, its test binary runs in a
// network namespace of its own (runtimetest.MainInNetNS) where it adds
// addresses to the loopback interface and nftables REDIRECT rules, so
// that connections to fake service and pod addresses reach the proxy as
// a sidecar's would. It has no code besides its tests.
package capturetest
