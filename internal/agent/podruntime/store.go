package podruntime

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Record states: a record is written with stateCreating before the kernel
// state it describes exists, and moves on once it does.
const (
	stateCreating = "creating"
	stateReady    = "ready"   // sandboxes
	stateRunning  = "running" // containers (as far as the record knows)
	stateExited   = "exited"
)

// sandboxRecord is a sandbox as persisted.
type sandboxRecord struct {
	ID        string        `json:"id"`
	PodUID    string        `json:"podUID"`
	Config    SandboxConfig `json:"config"`
	State     string        `json:"state"`
	IP        string        `json:"ip,omitempty"`
	CreatedAt time.Time     `json:"createdAt"`
}

type sandbox struct {
	rec sandboxRecord
}

// containerRecord is a container as persisted. Exit is filled in once the
// exit was observed, so that it survives the runtime's state.
type containerRecord struct {
	ID        string            `json:"id"`
	SandboxID string            `json:"sandboxID"`
	PodUID    string            `json:"podUID"`
	Name      string            `json:"name"`
	Attempt   int               `json:"attempt"`
	Image     string            `json:"image"`    // as given
	ImageRef  string            `json:"imageRef"` // normalised name, or the ID
	ImageID   string            `json:"imageID"`
	Labels    map[string]string `json:"labels,omitempty"`
	LogPath   string            `json:"logPath"`
	CreatedAt time.Time         `json:"createdAt"`
	State     string            `json:"state"`
	StartedAt time.Time         `json:"startedAt,omitzero"`
	Exit      *exitRecord       `json:"exit,omitempty"`

	// What exec'd processes inherit.
	User            specs.User `json:"user"`
	Env             []string   `json:"env"`
	Cwd             string     `json:"cwd"`
	NoNewPrivileges bool       `json:"noNewPrivileges,omitempty"`
	StopSignal      int        `json:"stopSignal,omitempty"`
	// TerminationLog is the host file behind terminationMessagePath.
	TerminationLog string `json:"terminationLog,omitempty"`
}

type exitRecord struct {
	Code       int       `json:"code"`
	OOMKilled  bool      `json:"oomKilled,omitempty"`
	FinishedAt time.Time `json:"finishedAt"`
	Reason     string    `json:"reason"`
	Message    string    `json:"message,omitempty"`
}

type container struct {
	mu  sync.Mutex // guards rec and its file
	rec containerRecord
	// freshPIDNS: while it is being created, the container makes its
	// pod's shared PID namespace.
	freshPIDNS bool
}

const containerRecordName = "container.json"

// saveJSON replaces path with v's JSON atomically (a temporary file
// renamed over it) but without fsync: a record describes kernel state —
// mounts, namespaces, processes — that a crash of the machine takes with
// it, while after a crash of the agent alone the page cache still holds
// the write. fsync would only make pod startup slower (milliseconds per
// record on a busy disk). A record a power loss left unreadable is
// dropped at Start (see readJSON's callers).
func saveJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("podruntime: save %s: %w", filepath.Base(path), err)
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("podruntime: save %s: %w", filepath.Base(path), err)
	}
	return nil
}

func (m *Manager) saveSandbox(rec *sandboxRecord) error {
	return saveJSON(filepath.Join(m.sandboxRecordDir(), rec.ID+".json"), rec)
}

func (m *Manager) deleteSandboxRecord(id string) error {
	err := os.Remove(filepath.Join(m.sandboxRecordDir(), id+".json"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// saveContainer persists c's record; call with c.mu held (or before c is
// shared).
func (m *Manager) saveContainer(rec *containerRecord) error {
	return saveJSON(filepath.Join(m.containerDataDir(rec.ID), containerRecordName), rec)
}

// loadSandboxes reads every sandbox record. An unreadable one (cut short
// by a power loss, so what it described is gone) is removed; the garbage
// collector then removes what is left of its sandbox.
func loadSandboxes(dir string, log *slog.Logger) ([]*sandbox, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("podruntime: %w", err)
	}
	var out []*sandbox
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".json") || strings.HasPrefix(name, ".") {
			continue
		}
		var rec sandboxRecord
		path := filepath.Join(dir, name)
		if err := readJSON(path, &rec); err != nil {
			var se *json.SyntaxError
			if !errors.As(err, &se) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, errNoRecord) {
				return nil, err
			}
			log.Warn("dropping an unreadable sandbox record", "path", path, "err", err)
			_ = os.Remove(path)
			continue
		}
		out = append(out, &sandbox{rec: rec})
	}
	return out, nil
}

// loadContainers reads every container record. A directory without a
// readable record (a crash before the intent was written, or a power loss
// that cut it short) is left to the garbage collector.
func loadContainers(dir string, log *slog.Logger) ([]*container, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("podruntime: %w", err)
	}
	var out []*container
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		var rec containerRecord
		path := filepath.Join(dir, e.Name(), containerRecordName)
		err := readJSON(path, &rec)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		var se *json.SyntaxError
		if errors.As(err, &se) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, errNoRecord) {
			log.Warn("dropping an unreadable container record", "path", path, "err", err)
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, &container{rec: rec})
	}
	return out, nil
}

// errNoRecord: a record file is empty.
var errNoRecord = errors.New("empty record")

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if len(b) == 0 {
		return fmt.Errorf("podruntime: %s: %w", path, errNoRecord)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("podruntime: %s: %w", path, err)
	}
	return nil
}
