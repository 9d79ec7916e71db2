package shim

import (
	"runtime/debug"
	"sync"
	"time"
)

// idleTrim is how long the shim must have had no client before it
// returns freed memory to the kernel.
const idleTrim = time.Second

// trimmer returns the memory that requests freed to the kernel once the
// shim is idle again: an exec or a stats call allocates a few MB that the
// Go runtime would otherwise keep, in each of many long-lived shims.
type trimmer struct {
	mu     sync.Mutex
	active int
	timer  *time.Timer
}

func (t *trimmer) busy() {
	t.mu.Lock()
	t.active++
	t.mu.Unlock()
}

func (t *trimmer) idle() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.active--
	if t.active > 0 {
		return
	}
	if t.timer == nil {
		t.timer = time.AfterFunc(idleTrim, t.trim)
	} else {
		t.timer.Reset(idleTrim)
	}
}

func (t *trimmer) trim() {
	t.mu.Lock()
	active := t.active
	t.mu.Unlock()
	if active == 0 {
		debug.FreeOSMemory()
	}
}
