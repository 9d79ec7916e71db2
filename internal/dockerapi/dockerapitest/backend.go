// Package dockerapitest is an in-memory [dockerapi.Backend] for tests: of
// the Docker API server itself, and of anything that talks to one (the
// docker CLI, moby's client, Skiff's own container verbs).
//
// Containers run fake programs ([Program]) chosen by the base name of
// their command: echo, cat, sh -c, sleep, true, false, env and a few more
// behave enough like busybox's for tests; tests add their own to
// Backend.Programs. Images, networks and volumes are records; a pull finds
// what a test put in Backend.Remote; a build reads the Dockerfile from the
// context and runs no RUN steps. Nothing touches the host.
//
// Every method follows the contract documented on dockerapi.Backend,
// including its error kinds (errdefs) and the Ready/ready signals of
// attach and wait.
package dockerapitest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"

	"skiff.dev/skiff/internal/dockerapi"
	"skiff.dev/skiff/internal/errdefs"
)

// Backend is the fake. Make it with New; set the exported fields before
// it is used.
type Backend struct {
	// Programs are the fake executables, by base name of argv[0].
	Programs map[string]Program
	// Remote is the registry a pull sees: reference → image config
	// ("alpine:3" or "example.com/app:v1"; references are normalized).
	Remote map[string]*container.Config
	// PullFunc, if set, replaces the fake pull (to script progress and
	// failures). It runs after the reference is normalized.
	PullFunc func(ctx context.Context, ref string, progress io.Writer) error

	mu         sync.Mutex
	seq        int
	containers map[string]*fakeContainer // by ID
	execs      map[string]*fakeExec
	images     map[string]*fakeImage // by ID
	tags       map[string]string     // familiar reference → image ID
	networks   map[string]*fakeNetwork
	volumes    map[string]*fakeVolume
	events     []events.Message
	subs       map[chan events.Message]*eventSub
}

var _ dockerapi.Backend = (*Backend)(nil)

// New returns a fake with the "busybox:latest" image and the bridge, host
// and none networks.
func New() *Backend {
	b := &Backend{
		Programs:   builtinPrograms(),
		Remote:     map[string]*container.Config{},
		containers: map[string]*fakeContainer{},
		execs:      map[string]*fakeExec{},
		images:     map[string]*fakeImage{},
		tags:       map[string]string{},
		networks:   map[string]*fakeNetwork{},
		volumes:    map[string]*fakeVolume{},
		subs:       map[chan events.Message]*eventSub{},
	}
	b.AddImage("busybox:latest", &container.Config{Cmd: []string{"sh"}, Env: []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}})
	for _, n := range []struct{ name, driver string }{{"bridge", "bridge"}, {"host", "host"}, {"none", "null"}} {
		b.addNetwork(network.CreateRequest{Name: n.name, Driver: n.driver}, true)
	}
	return b
}

// kindError is an error of an errdefs kind whose message is exactly msg
// (Docker's wording, without the kind appended).
type kindError struct {
	msg  string
	kind error
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

func errf(kind error, format string, args ...any) error {
	return &kindError{msg: fmt.Sprintf(format, args...), kind: kind}
}

func randomID() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func shortID(id string) string {
	id = strings.TrimPrefix(id, "sha256:")
	return id[:min(12, len(id))]
}

// byPrefix finds the one key with prefix p.
func byPrefix[T any](m map[string]T, p string, trim string) (T, bool, error) {
	var zero T
	if p == "" {
		return zero, false, nil
	}
	var found T
	n := 0
	for k, v := range m {
		if strings.HasPrefix(strings.TrimPrefix(k, trim), p) {
			found = v
			n++
		}
	}
	if n > 1 {
		return zero, false, errf(errdefs.ErrInvalid, "multiple IDs found with provided prefix: %s", p)
	}
	return found, n == 1, nil
}

// emit records an event; b.mu is held.
func (b *Backend) emit(typ events.Type, action events.Action, id string, attrs map[string]string) {
	now := time.Now()
	m := events.Message{Type: typ, Action: action, Actor: events.Actor{ID: id, Attributes: attrs},
		Scope: "local", Time: now.Unix(), TimeNano: now.UnixNano()}
	b.events = append(b.events, m)
	for ch, sub := range b.subs {
		if !sub.match(m) {
			continue
		}
		select {
		case ch <- m:
		default: // a subscriber that does not keep up loses events
		}
	}
}
