package metricsapi

import (
	"testing"
	"time"
)

func TestStorage(t *testing.T) {
	t0 := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
	start := t0.Add(-time.Hour)
	web := podKey{"default", "web"}
	pt := func(at time.Time, cpuSeconds float64, mem uint64) point {
		return point{start: start, timestamp: at, cpu: uint64(cpuSeconds * 1e9), memory: mem}
	}
	scrape := func(s *storage, at time.Time, nodeCPU float64, containers map[string]point) {
		b := newBatch()
		b.nodes["n1"] = pt(at, nodeCPU, 1<<30)
		if containers != nil {
			b.pods[web] = containers
		}
		s.store(b)
	}

	t.Run("rate between the last two points", func(t *testing.T) {
		s := newStorage(15 * time.Second)
		scrape(s, t0, 100, map[string]point{"app": pt(t0, 10, 1<<20), "side": pt(t0, 1, 2<<20)})
		if _, _, _, ok := s.node("n1"); ok {
			t.Error("node metrics after one point")
		}
		if _, _, _, ok := s.pod(web); ok {
			t.Error("pod metrics after one point")
		}
		t1 := t0.Add(15 * time.Second)
		scrape(s, t1, 115, map[string]point{"app": pt(t1, 17.5, 3<<20), "side": pt(t1, 1, 2<<20)})
		usage, ts, window, ok := s.node("n1")
		if !ok || !ts.Equal(t1) || window != 15*time.Second || usage.Cpu().MilliValue() != 1000 || usage.Memory().Value() != 1<<30 {
			t.Errorf("node: %v %v %v %v", usage, ts, window, ok)
		}
		cs, ts, window, ok := s.pod(web)
		if !ok || len(cs) != 2 || !ts.Equal(t1) || window != 15*time.Second {
			t.Fatalf("pod: %+v %v %v %v", cs, ts, window, ok)
		}
		if cs[0].Name != "app" || cs[0].Usage.Cpu().MilliValue() != 500 || cs[0].Usage.Cpu().String() != "500m" ||
			cs[0].Usage.Memory().String() != "3Mi" {
			t.Errorf("app: %v", cs[0].Usage)
		}
		if cs[1].Name != "side" || !cs[1].Usage.Cpu().IsZero() {
			t.Errorf("side: %v", cs[1].Usage)
		}
	})

	t.Run("a point not newer keeps the previous one", func(t *testing.T) {
		s := newStorage(15 * time.Second)
		t1 := t0.Add(10 * time.Second)
		scrape(s, t0, 100, map[string]point{"app": pt(t0, 10, 1)})
		scrape(s, t1, 110, map[string]point{"app": pt(t1, 15, 1)})
		scrape(s, t1, 110, map[string]point{"app": pt(t1, 15, 1)}) // the agent's sample did not move
		if cs, _, w, ok := s.pod(web); !ok || w != 10*time.Second || cs[0].Usage.Cpu().MilliValue() != 500 {
			t.Errorf("pod: %+v %v %v", cs, w, ok)
		}
	})

	t.Run("a restarted container starts over", func(t *testing.T) {
		s := newStorage(15 * time.Second)
		t1 := t0.Add(10 * time.Second)
		scrape(s, t0, 100, map[string]point{"app": pt(t0, 10, 1)})
		restarted := point{start: t0.Add(5 * time.Second), timestamp: t1, cpu: 1e9, memory: 1}
		scrape(s, t1, 110, map[string]point{"app": restarted})
		if _, _, _, ok := s.pod(web); ok {
			t.Error("metrics across a restart")
		}
	})

	t.Run("a fresh container gets a rate from its start", func(t *testing.T) {
		s := newStorage(15 * time.Second)
		fresh := point{start: t0.Add(-12 * time.Second), timestamp: t0, cpu: 6e9, memory: 1}
		scrape(s, t0, 100, map[string]point{"app": fresh})
		cs, _, w, ok := s.pod(web)
		if !ok || w != 12*time.Second || cs[0].Usage.Cpu().MilliValue() != 500 {
			t.Errorf("pod: %+v %v %v", cs, w, ok)
		}
	})

	t.Run("a pod or node gone from the scrape has no metrics", func(t *testing.T) {
		s := newStorage(15 * time.Second)
		scrape(s, t0, 100, map[string]point{"app": pt(t0, 10, 1)})
		scrape(s, t0.Add(time.Second), 101, map[string]point{"app": pt(t0.Add(time.Second), 10, 1)})
		scrape(s, t0.Add(2*time.Second), 102, nil)
		if _, _, _, ok := s.pod(web); ok {
			t.Error("pod still has metrics")
		}
		s.store(newBatch())
		if _, _, _, ok := s.node("n1"); ok {
			t.Error("node still has metrics")
		}
	})

	t.Run("a pod with a new container waits for its second point", func(t *testing.T) {
		s := newStorage(15 * time.Second)
		t1 := t0.Add(time.Second)
		scrape(s, t0, 100, map[string]point{"app": pt(t0, 10, 1)})
		scrape(s, t1, 101, map[string]point{"app": pt(t1, 10, 1), "new": pt(t1, 1, 1)})
		if _, _, _, ok := s.pod(web); ok {
			t.Error("pod metrics without all containers")
		}
	})
}
