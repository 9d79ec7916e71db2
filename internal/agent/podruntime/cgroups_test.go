package podruntime

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCgroups: the pods and their running containers are listed with
// cgroups that exist in the hierarchies; an exited container is not.
func TestCgroups(t *testing.T) {
	e := newEnv(t)
	sb := e.runPod("stats", nil)
	sleeper := e.run(sb, "sleeper", "sleep", "3600")
	done := e.run(sb, "done", "true")
	e.wait(done)

	var got *PodCgroups
	for _, p := range e.m.Cgroups() {
		if p.PodUID == sb.PodUID {
			got = &p
		}
	}
	if got == nil {
		t.Fatalf("pod %s not listed: %+v", sb.PodUID, e.m.Cgroups())
	}
	if got.Namespace != sb.Namespace || got.Name != sb.Name || got.StartTime.IsZero() || got.Cgroup != "/skiff/pods/pod"+sb.PodUID {
		t.Errorf("pod %+v", got)
	}
	if len(got.Containers) != 1 || got.Containers[0].ID != sleeper || got.Containers[0].Name != "sleeper" ||
		got.Containers[0].Cgroup != got.Cgroup+"/"+sleeper || got.Containers[0].StartTime.IsZero() {
		t.Fatalf("containers %+v", got.Containers)
	}
	// The memory controller is mounted as v1 here, or the unified
	// hierarchy is at the root.
	rel := strings.TrimPrefix(got.Containers[0].Cgroup, "/")
	dirs, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup/memory", rel))
	if _, err := os.Stat(filepath.Join("/sys/fs/cgroup", rel)); err == nil {
		dirs = append(dirs, filepath.Join("/sys/fs/cgroup", rel))
	}
	if len(dirs) == 0 {
		t.Errorf("no cgroup directory for %s", got.Containers[0].Cgroup)
	}
}
