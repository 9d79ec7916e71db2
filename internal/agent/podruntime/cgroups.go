package podruntime

import (
	"cmp"
	"slices"
	"time"
)

// PodCgroups names the cgroups of one pod and of its running containers,
// for the node's resource stats (package agent/stats). Cgroup paths are
// absolute, as libcontainer takes them: relative to the root of each
// hierarchy (cgroup v1) or of the unified hierarchy (v2).
type PodCgroups struct {
	PodUID, Namespace, Name string
	// StartTime is when the pod's sandbox was created.
	StartTime time.Time
	// Cgroup is the pod's cgroup, the parent of its containers'.
	Cgroup     string
	Containers []ContainerCgroup
}

// ContainerCgroup is a running container's cgroup.
type ContainerCgroup struct {
	ID, Name  string
	StartTime time.Time
	Cgroup    string
}

// Cgroups lists the pod of every sandbox with the containers its records
// say run, sorted by namespace, pod and container name. It reads only
// what the Manager holds in memory, without asking the runtime: a
// container that exited meanwhile has no cgroup any more, which a reader
// sees.
func (m *Manager) Cgroups() []PodCgroups {
	m.mu.Lock()
	byPod := make(map[string]*PodCgroups, len(m.sandboxes))
	for uid, sb := range m.sandboxes {
		c := sb.rec.Config
		byPod[uid] = &PodCgroups{PodUID: uid, Namespace: c.Namespace, Name: c.Name,
			StartTime: sb.rec.CreatedAt, Cgroup: podCgroupParent(uid)}
	}
	containers := make([]*container, 0, len(m.containers))
	for _, c := range m.containers {
		containers = append(containers, c)
	}
	m.mu.Unlock()
	for _, c := range containers {
		c.mu.Lock()
		r := c.rec
		c.mu.Unlock()
		p := byPod[r.PodUID]
		if p == nil || r.State != stateRunning {
			continue
		}
		p.Containers = append(p.Containers, ContainerCgroup{ID: r.ID, Name: r.Name, StartTime: r.StartedAt, Cgroup: p.Cgroup + "/" + r.ID})
	}
	out := make([]PodCgroups, 0, len(byPod))
	for _, p := range byPod {
		slices.SortFunc(p.Containers, func(a, b ContainerCgroup) int { return cmp.Compare(a.Name, b.Name) })
		out = append(out, *p)
	}
	slices.SortFunc(out, func(a, b PodCgroups) int {
		return cmp.Or(cmp.Compare(a.Namespace, b.Namespace), cmp.Compare(a.Name, b.Name), cmp.Compare(a.PodUID, b.PodUID))
	})
	return out
}
