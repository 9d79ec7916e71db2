package dockerapitest_test

import (
	"testing"

	"skiff.dev/skiff/internal/dockerapi"
	"skiff.dev/skiff/internal/dockerapi/dockerapitest"
)

func TestConformance(t *testing.T) {
	dockerapitest.RunConformance(t, func(*testing.T) dockerapi.Backend { return dockerapitest.New() })
}
