package job

import (
	"sync"

	"k8s.io/apimachinery/pkg/types"
)

// removals remember, per Job, the pods whose tracking finalizer this
// controller removed while the pod cache may still show it. A sync treats
// them as counted, so a stale cache cannot make it count a pod twice.
// (Pod creations and deletions are tracked by podcontrol.Expectations.)
type removals struct {
	mu   sync.Mutex
	jobs map[string]map[types.UID]bool
}

func newRemovals() *removals { return &removals{jobs: map[string]map[types.UID]bool{}} }

// expect records that uid's finalizer is being removed.
func (r *removals) expect(key string, uid types.UID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.jobs[key]
	if m == nil {
		m = map[types.UID]bool{}
		r.jobs[key] = m
	}
	m[uid] = true
}

// observed records that the cache shows uid without the finalizer (or
// gone), or that the removal failed.
func (r *removals) observed(key string, uid types.UID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if m := r.jobs[key]; m != nil {
		delete(m, uid)
		if len(m) == 0 {
			delete(r.jobs, key)
		}
	}
}

// pending returns the pods whose removal the cache does not show yet.
func (r *removals) pending(key string) map[types.UID]bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[types.UID]bool, len(r.jobs[key]))
	for uid := range r.jobs[key] {
		out[uid] = true
	}
	return out
}

func (r *removals) forget(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.jobs, key)
}
