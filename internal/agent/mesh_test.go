package agent_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"skiff.dev/skiff/internal/admission/meshinject"
	"skiff.dev/skiff/internal/agent"
	"skiff.dev/skiff/internal/agent/agenttest"
	"skiff.dev/skiff/internal/mesh/meshconfig"
)

// fakeMesh records the agent's calls, and the runtime's calls made before
// each SetUp.
type fakeMesh struct {
	rt  *agenttest.Runtime
	dir string

	mu       sync.Mutex
	fail     error                  // SetUp's answer
	setUps   map[types.UID][]string // runtime calls before each SetUp
	tornDown map[types.UID]int
}

func (m *fakeMesh) Wants(pod *corev1.Pod) bool {
	_, ok := pod.Annotations[meshconfig.StatusAnnotation]
	return ok
}

func (m *fakeMesh) VolumeDir(pod *corev1.Pod, v *corev1.Volume) (string, bool) {
	if v.Name != meshconfig.VolumeName || !m.Wants(pod) {
		return "", false
	}
	return filepath.Join(m.dir, string(pod.UID)), true
}

func (m *fakeMesh) SetUp(_ context.Context, pod *corev1.Pod, netns string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.setUps[pod.UID] = append(m.setUps[pod.UID], strings.Join(m.rt.Calls(), "\n"))
	return m.fail
}

func (m *fakeMesh) TearDown(_ context.Context, uid types.UID, netns string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tornDown[uid]++
	return nil
}

func (m *fakeMesh) counts(uid types.UID) (setUps []string, tornDown int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.setUps[uid], m.tornDown[uid]
}

// TestMeshSeam runs an injected pod: the Mesh is set up once, after the
// sandbox and before any container; the sidecar gets the pod's mesh
// directory at meshconfig.MountPath; an uninjected pod costs the Mesh
// nothing; deletion tears it down.
func TestMeshSeam(t *testing.T) {
	env := newEnv(t)
	var mesh *fakeMesh
	n := startNode(t, env, func(o *agent.Options) {
		mesh = &fakeMesh{rt: o.Runtime.(*agenttest.Runtime), dir: t.TempDir(), setUps: map[types.UID][]string{}, tornDown: map[types.UID]int{}}
		o.Mesh = mesh
	})
	n.rt.AddImage(meshconfig.Image)

	p := pod("meshed", corev1.Container{Name: "app", Image: "busybox:1"})
	meshinject.Inject(p)
	// The fake runtime answers no HTTP probes.
	p.Spec.InitContainers[0].StartupProbe, p.Spec.InitContainers[0].ReadinessProbe = nil, nil
	created := create(t, env.Client, p)
	create(t, env.Client, pod("plain", corev1.Container{Name: "app", Image: "busybox:1"}))
	waitPod(t, env.Client, "meshed", "running", func(p *corev1.Pod) bool { return ready(p) && p.Status.Phase == corev1.PodRunning })
	plain := waitPod(t, env.Client, "plain", "running", func(p *corev1.Pod) bool { return ready(p) })

	setUps, _ := mesh.counts(created.UID)
	if len(setUps) != 1 {
		t.Fatalf("%d SetUps, want 1", len(setUps))
	}
	if before := setUps[0]; !strings.Contains(before, "RunSandbox meshed") || strings.Contains(before, "CreateAndStart") {
		t.Errorf("runtime calls before SetUp:\n%s", before)
	}
	if s, _ := mesh.counts(plain.UID); len(s) != 0 {
		t.Errorf("SetUp for an uninjected pod")
	}
	cfg, ok := n.rt.Config(string(created.UID), meshconfig.ContainerName)
	if !ok {
		t.Fatal("no sidecar config")
	}
	found := false
	for _, m := range cfg.Mounts {
		if m.Destination == meshconfig.MountPath {
			found = true
			if want := filepath.Join(mesh.dir, string(created.UID)); m.Source != want {
				t.Errorf("mesh mount source %s, want %s", m.Source, want)
			}
		}
	}
	if !found {
		t.Errorf("no mount at %s in %+v", meshconfig.MountPath, cfg.Mounts)
	}

	if err := env.Client.CoreV1().Pods("default").Delete(context.Background(), "meshed", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "mesh torn down", func(context.Context) (bool, error) {
		_, torn := mesh.counts(created.UID)
		return torn > 0, nil
	})
}

// TestMeshSetUpFailure: a pod whose mesh cannot be set up starts no
// container and says why in an event; it starts once the mesh works.
func TestMeshSetUpFailure(t *testing.T) {
	env := newEnv(t)
	var mesh *fakeMesh
	n := startNode(t, env, func(o *agent.Options) {
		mesh = &fakeMesh{rt: o.Runtime.(*agenttest.Runtime), dir: t.TempDir(), setUps: map[types.UID][]string{}, tornDown: map[types.UID]int{},
			fail: errors.New("bad capture annotation")}
		o.Mesh = mesh
	})
	n.rt.AddImage(meshconfig.Image)
	p := pod("broken", corev1.Container{Name: "app", Image: "busybox:1"})
	meshinject.Inject(p)
	p.Spec.InitContainers[0].StartupProbe, p.Spec.InitContainers[0].ReadinessProbe = nil, nil
	created := create(t, env.Client, p)
	hasEvent(t, env.Client, "broken", "FailedCreatePodSandBox")
	if i := callIndex(n.rt.Calls(), "CreateAndStart"); i >= 0 {
		t.Errorf("a container started without the mesh: %v", n.rt.Calls())
	}
	mesh.mu.Lock()
	mesh.fail = nil
	mesh.mu.Unlock()
	waitPod(t, env.Client, "broken", "running once the mesh works", func(p *corev1.Pod) bool { return ready(p) })
	if s, _ := mesh.counts(created.UID); len(s) < 2 {
		t.Errorf("%d SetUps, want a retry", len(s))
	}
}
