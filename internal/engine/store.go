package engine

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"

	"skiff.dev/skiff/internal/atomicfile"
	"skiff.dev/skiff/internal/errdefs"
)

// record is what the engine keeps about one container, persisted as
// containers/<id>/container.json. Fields change only under the engine's
// lock for that container (ctr.mu).
type record struct {
	ID         string
	Name       string // without the leading slash
	Created    time.Time
	Image      string // as the user wrote it
	ImageID    string
	Path       string
	Args       []string
	Config     *container.Config
	HostConfig *container.HostConfig
	// Networks the container is attached to when running, by network
	// name, with the user's settings (aliases, static IP) and, while
	// running, the operational data.
	Networks map[string]*network.EndpointSettings
	Ports    network.PortMap

	State        container.State
	RestartCount int
	// ManuallyStopped is set by stop/kill so restart policies leave the
	// container alone (and unless-stopped stays stopped after an engine
	// restart).
	ManuallyStopped bool
	ExecIDs         []string `json:",omitempty"`
}

// ctr is a container in memory: its record plus synchronisation.
type ctr struct {
	mu  sync.Mutex // serialises lifecycle operations
	rec record
	// changed is closed and replaced whenever the state changes, so
	// waiters can select on it.
	changed chan struct{}
	// startedOnce is closed the first time the container starts after a
	// pending attach registered (docker run's attach-before-start).
	attachers []chan struct{}
	removed   bool
}

func (c *ctr) notify() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// containers indexes the engine's containers by ID and name.
type containers struct {
	dir    string
	mu     sync.RWMutex
	byID   map[string]*ctr
	byName map[string]*ctr
}

func newContainers(dir string) *containers {
	return &containers{dir: dir, byID: map[string]*ctr{}, byName: map[string]*ctr{}}
}

func (cs *containers) path(id string, parts ...string) string {
	return filepath.Join(append([]string{cs.dir, id}, parts...)...)
}

// load reads every persisted record.
func (cs *containers) load() ([]*ctr, error) {
	entries, err := os.ReadDir(cs.dir)
	if err != nil && !os.IsNotExist(err) {
		return nil, fmt.Errorf("containers: %w", err)
	}
	var out []*ctr
	for _, e := range entries {
		b, err := os.ReadFile(cs.path(e.Name(), "container.json"))
		if err != nil {
			continue // a half-created container: removed by the caller
		}
		c := &ctr{changed: make(chan struct{})}
		if err := json.Unmarshal(b, &c.rec); err != nil || c.rec.ID != e.Name() {
			return nil, fmt.Errorf("container %s: corrupt record: %v", e.Name(), err)
		}
		cs.add(c)
		out = append(out, c)
	}
	return out, nil
}

// save persists c's record atomically. Call with c.mu held.
func (cs *containers) save(c *ctr) error {
	b, err := json.Marshal(&c.rec)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cs.path(c.rec.ID), 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(cs.path(c.rec.ID, "container.json"), b, 0o600)
}

// reserve claims name (generated when empty) for a new container with a
// new ID; ErrConflict if the name is taken.
func (cs *containers) reserve(name string, c *ctr) error {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	c.rec.ID = newID()
	if name == "" {
		for {
			name = randomName()
			if _, taken := cs.byName[name]; !taken {
				break
			}
		}
	}
	if other, taken := cs.byName[name]; taken {
		return fmt.Errorf("Conflict. The container name %q is already in use by container %q. You have to remove (or rename) that container to be able to reuse that name: %w", "/"+name, other.rec.ID, errdefs.ErrConflict)
	}
	c.rec.Name = name
	cs.byID[c.rec.ID] = c
	cs.byName[name] = c
	return nil
}

func (cs *containers) add(c *ctr) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.byID[c.rec.ID] = c
	cs.byName[c.rec.Name] = c
}

func (cs *containers) remove(c *ctr) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	delete(cs.byID, c.rec.ID)
	if cs.byName[c.rec.Name] == c {
		delete(cs.byName, c.rec.Name)
	}
}

func (cs *containers) rename(c *ctr, newName string) error {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if other, taken := cs.byName[newName]; taken && other != c {
		return fmt.Errorf("Conflict. The container name %q is already in use by container %q: %w", "/"+newName, other.rec.ID, errdefs.ErrConflict)
	}
	delete(cs.byName, c.rec.Name)
	c.rec.Name = newName
	cs.byName[newName] = c
	return nil
}

// get finds a container like Docker: full ID, name (with or without the
// leading slash), or a unique ID prefix.
func (cs *containers) get(nameOrID string) (*ctr, error) {
	cs.mu.RLock()
	defer cs.mu.RUnlock()
	if nameOrID == "" {
		return nil, fmt.Errorf("no container name or ID given: %w", errdefs.ErrInvalid)
	}
	if c, ok := cs.byID[nameOrID]; ok {
		return c, nil
	}
	if c, ok := cs.byName[strings.TrimPrefix(nameOrID, "/")]; ok {
		return c, nil
	}
	var found *ctr
	for id, c := range cs.byID {
		if strings.HasPrefix(id, nameOrID) {
			if found != nil {
				return nil, fmt.Errorf("multiple IDs found with provided prefix: %s: %w", nameOrID, errdefs.ErrInvalid)
			}
			found = c
		}
	}
	if found == nil {
		return nil, fmt.Errorf("No such container: %s: %w", nameOrID, errdefs.ErrNotFound)
	}
	return found, nil
}

func (cs *containers) all() []*ctr {
	cs.mu.RLock()
	defer cs.mu.RUnlock()
	out := make([]*ctr, 0, len(cs.byID))
	for _, c := range cs.byID {
		out = append(out, c)
	}
	return out
}

func newID() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return hex.EncodeToString(b[:])
}

var (
	adjectives = []string{"brave", "calm", "eager", "fancy", "gentle", "happy", "jolly", "keen", "lucid", "merry", "nimble", "proud", "quiet", "rapid", "sharp", "tender", "vivid", "witty", "zealous", "bold"}
	sailors    = []string{"anchor", "bosun", "compass", "dinghy", "ensign", "frigate", "galley", "harbor", "jib", "keel", "lantern", "mast", "oar", "pilot", "quay", "rudder", "skiff", "tiller", "voyage", "wake"}
)

func randomName() string {
	var b [2]byte
	_, _ = rand.Read(b[:])
	return adjectives[int(b[0])%len(adjectives)] + "_" + sailors[int(b[1])%len(sailors)]
}
