package control

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	// Istio's fake clientset does not answer watch-list requests (the
	// initial-events bookmark); informers on it must list, then watch.
	os.Setenv("KUBE_FEATURE_WatchListClient", "false")
	os.Exit(m.Run())
}
