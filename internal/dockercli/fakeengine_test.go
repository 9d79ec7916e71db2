package dockercli

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/distribution/reference"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/api/types/volume"
)

// fakeEngine answers the few Docker Engine API endpoints the commands
// use, over TCP on loopback. Containers run a tiny scripted "program"
// chosen by their command:
//
//	echo ARGS...   prints ARGS to stdout, exits 0
//	fail N         prints "failing" to stderr, exits N
//	cat            copies stdin to stdout until EOF, exits 0
//	nope           cannot start: executable file not found
//	(anything else) runs until stopped or killed
type fakeEngine struct {
	t    *testing.T
	srv  *httptest.Server
	done chan struct{}

	mu         sync.Mutex
	requests   []string // "METHOD /path?query", API version prefix removed
	creates    []container.CreateRequest
	containers []*fakeContainer
	images     map[string]bool // familiar name:tag
	pullable   map[string]bool
	networks   []network.Summary
	volumes    []volume.Volume
	execs      map[string]*fakeExec
	nextID     int
}

type fakeContainer struct {
	id, name string
	cfg      container.Config
	host     container.HostConfig
	created  time.Time
	state    container.ContainerState
	status   string // what ps shows, when set by the test
	exitCode int
	logs     []logLine
	attached []*attachConn
	stop     chan int      // ends a running program with a code
	exited   chan struct{} // closed at each exit (replaced on start)
	removed  chan struct{}
}

type logLine struct {
	stream byte // 1 stdout, 2 stderr
	text   string
}

type attachConn struct {
	conn                net.Conn
	rw                  *bufio.ReadWriter
	stdin, stdout, errs bool
	tty                 bool
}

type fakeExec struct {
	id, container string
	cmd           []string
	exitCode      int
	running       bool
}

func newFakeEngine(t *testing.T) *fakeEngine {
	f := &fakeEngine{
		t:        t,
		done:     make(chan struct{}),
		images:   map[string]bool{"busybox:latest": true},
		pullable: map[string]bool{},
		execs:    map[string]*fakeExec{},
	}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(func() {
		close(f.done)
		f.srv.CloseClientConnections()
		f.srv.Close()
	})
	return f
}

// host is what the commands connect to.
func (f *fakeEngine) host() string { return "tcp://" + f.srv.Listener.Addr().String() }

// requestLog returns the requests seen so far.
func (f *fakeEngine) requestLog() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

// addContainer puts a container in the engine, as if created earlier.
func (f *fakeEngine) addContainer(name, img string, cmd []string, state container.ContainerState, created time.Time) *fakeContainer {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.newContainerLocked(name, container.Config{Image: img, Cmd: cmd}, container.HostConfig{})
	c.created, c.state = created, state
	switch state {
	case container.StateRunning:
		c.stop = make(chan int, 1)
		go f.runProgram(c, nil, nil) // runs until stopped
	case container.StateExited:
		close(c.exited)
	}
	return c
}

func (f *fakeEngine) newContainerLocked(name string, cfg container.Config, host container.HostConfig) *fakeContainer {
	f.nextID++
	sum := sha256.Sum256([]byte(fmt.Sprint("container", f.nextID)))
	id := hex.EncodeToString(sum[:])
	if name == "" {
		name = fmt.Sprintf("fake_%d", f.nextID)
	}
	c := &fakeContainer{id: id, name: name, cfg: cfg, host: host, created: time.Now(), state: container.StateCreated,
		exited: make(chan struct{}), removed: make(chan struct{})}
	f.containers = append(f.containers, c)
	return c
}

var versionPrefix = regexp.MustCompile(`^/v[0-9.]+`)

func (f *fakeEngine) serve(w http.ResponseWriter, r *http.Request) {
	path := versionPrefix.ReplaceAllString(r.URL.Path, "")
	f.mu.Lock()
	line := r.Method + " " + path
	if r.URL.RawQuery != "" {
		line += "?" + r.URL.RawQuery
	}
	f.requests = append(f.requests, line)
	f.mu.Unlock()

	parts := strings.Split(strings.Trim(path, "/"), "/")
	q := r.URL.Query()
	switch {
	case path == "/_ping":
		w.Header().Set("API-Version", "1.51")
		w.Header().Set("OSType", "linux")
		fmt.Fprint(w, "OK")
	case r.Method == http.MethodPost && path == "/containers/create":
		f.create(w, r)
	case r.Method == http.MethodGet && path == "/containers/json":
		f.list(w, q)
	case r.Method == http.MethodPost && path == "/containers/prune":
		f.prune(w)
	case parts[0] == "containers" && len(parts) >= 2:
		f.containerOp(w, r, parts[1], strings.Join(parts[2:], "/"), q)
	case r.Method == http.MethodPost && path == "/commit":
		f.mu.Lock()
		found := f.findLocked(q.Get("container")) != nil
		f.mu.Unlock()
		if !found {
			apiError(w, http.StatusNotFound, "No such container: "+q.Get("container"))
			return
		}
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(map[string]string{"Id": "sha256:" + strings.Repeat("cd", 32)})
	case r.Method == http.MethodPost && path == "/images/create":
		f.pull(w, q)
	case r.Method == http.MethodGet && parts[0] == "images" && parts[len(parts)-1] == "json":
		name := strings.Join(parts[1:len(parts)-1], "/")
		if !f.hasImage(name) {
			apiError(w, http.StatusNotFound, "No such image: "+name)
			return
		}
		writeJSON(w, image.InspectResponse{ID: "sha256:" + strings.Repeat("ab", 32), RepoTags: []string{name}})
	case parts[0] == "exec" && len(parts) == 3:
		f.execOp(w, r, parts[1], parts[2])
	case parts[0] == "networks":
		f.networkOp(w, r, parts[1:])
	case parts[0] == "volumes":
		f.volumeOp(w, r, parts[1:])
	case path == "/info":
		writeJSON(w, system.Info{ID: "fake", Containers: len(f.containers), Name: "fakehost", ServerVersion: "0.0-fake", OSType: "linux", NCPU: 2, MemTotal: 1 << 30})
	default:
		apiError(w, http.StatusNotFound, "page not found: "+r.Method+" "+path)
	}
}

func apiError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func familiar(name string) string {
	ref, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return name
	}
	return reference.FamiliarString(reference.TagNameOnly(ref))
}

func (f *fakeEngine) hasImage(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.images[familiar(name)]
}

func (f *fakeEngine) create(w http.ResponseWriter, r *http.Request) {
	var req container.CreateRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		apiError(w, http.StatusBadRequest, err.Error())
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.creates = append(f.creates, req)
	if !f.images[familiar(req.Image)] {
		apiError(w, http.StatusNotFound, "No such image: "+familiar(req.Image))
		return
	}
	name := r.URL.Query().Get("name")
	for _, c := range f.containers {
		if name != "" && c.name == name {
			apiError(w, http.StatusConflict, fmt.Sprintf(`Conflict. The container name "/%s" is already in use by container %q.`, name, c.id))
			return
		}
	}
	host := container.HostConfig{}
	if req.HostConfig != nil {
		host = *req.HostConfig
	}
	c := f.newContainerLocked(name, *req.Config, host)
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(container.CreateResponse{ID: c.id, Warnings: []string{}})
}

// find resolves a name, ID or ID prefix; the lock must be held.
func (f *fakeEngine) findLocked(ref string) *fakeContainer {
	for _, c := range f.containers {
		if c.id == ref || c.name == strings.TrimPrefix(ref, "/") {
			return c
		}
	}
	for _, c := range f.containers {
		if len(ref) >= 3 && strings.HasPrefix(c.id, ref) {
			return c
		}
	}
	return nil
}

func (f *fakeEngine) summary(c *fakeContainer) container.Summary {
	s := container.Summary{
		ID: c.id, Names: []string{"/" + c.name}, Image: c.cfg.Image, ImageID: "sha256:" + strings.Repeat("ab", 32),
		Command: strings.Join(append(slices.Clone(c.cfg.Entrypoint), c.cfg.Cmd...), " "),
		Created: c.created.Unix(), State: c.state, Status: c.status, Labels: c.cfg.Labels,
	}
	for port, bindings := range c.host.PortBindings {
		for _, b := range bindings {
			hp, _ := strconv.Atoi(b.HostPort)
			s.Ports = append(s.Ports, container.PortSummary{IP: b.HostIP, PrivatePort: port.Num(), PublicPort: uint16(hp), Type: string(port.Proto())})
		}
	}
	return s
}

func (f *fakeEngine) list(w http.ResponseWriter, q url.Values) {
	f.mu.Lock()
	defer f.mu.Unlock()
	all := q.Get("all") == "1" || q.Get("all") == "true"
	limit, _ := strconv.Atoi(q.Get("limit"))
	var out []container.Summary
	for i := len(f.containers) - 1; i >= 0; i-- { // newest first
		c := f.containers[i]
		if !all && limit <= 0 && c.state != container.StateRunning {
			continue
		}
		out = append(out, f.summary(c))
		if limit > 0 && len(out) == limit {
			break
		}
	}
	writeJSON(w, out)
}

func (f *fakeEngine) prune(w http.ResponseWriter) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var report container.PruneReport
	kept := f.containers[:0]
	for _, c := range f.containers {
		if c.state == container.StateRunning {
			kept = append(kept, c)
			continue
		}
		report.ContainersDeleted = append(report.ContainersDeleted, c.id)
		close(c.removed)
	}
	f.containers = kept
	writeJSON(w, report)
}

func (f *fakeEngine) containerOp(w http.ResponseWriter, r *http.Request, ref, op string, q url.Values) {
	f.mu.Lock()
	c := f.findLocked(ref)
	f.mu.Unlock()
	if c == nil {
		apiError(w, http.StatusNotFound, "No such container: "+ref)
		return
	}
	switch r.Method + " " + op {
	case "GET json":
		f.mu.Lock()
		resp := container.InspectResponse{
			ID: c.id, Name: "/" + c.name, Created: c.created.Format(time.RFC3339Nano), Image: c.cfg.Image,
			State:  &container.State{Status: c.state, Running: c.state == container.StateRunning, ExitCode: c.exitCode},
			Config: &c.cfg, HostConfig: &c.host,
		}
		f.mu.Unlock()
		writeJSON(w, resp)
	case "POST start":
		f.start(w, c)
	case "POST attach":
		f.attach(w, c, q)
	case "POST wait":
		f.wait(w, r, c, container.WaitCondition(q.Get("condition")))
	case "GET logs":
		f.logs(w, c, q)
	case "POST stop", "POST kill", "POST restart":
		f.mu.Lock()
		running, stop, exited := c.state == container.StateRunning, c.stop, c.exited
		f.mu.Unlock()
		if !running && op != "restart" {
			if op == "kill" {
				apiError(w, http.StatusConflict, fmt.Sprintf("cannot kill container: %s: container %s is not running", ref, c.id))
				return
			}
			w.WriteHeader(http.StatusNotModified)
			return
		}
		if running {
			stop <- 137
			<-exited
		}
		if op == "restart" {
			f.start(w, c)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case "DELETE ":
		f.mu.Lock()
		if c.state == container.StateRunning && q.Get("force") != "1" {
			f.mu.Unlock()
			apiError(w, http.StatusConflict, fmt.Sprintf("cannot remove container %q: container is running: stop the container before removing or force remove", "/"+c.name))
			return
		}
		running, stop, exited := c.state == container.StateRunning, c.stop, c.exited
		f.mu.Unlock()
		if running {
			stop <- 137
			<-exited
		}
		f.remove(c)
		w.WriteHeader(http.StatusNoContent)
	case "GET stats":
		writeJSON(w, container.StatsResponse{ID: c.id, Name: "/" + c.name,
			CPUStats:    container.CPUStats{CPUUsage: container.CPUUsage{TotalUsage: 3_000_000}, SystemUsage: 20_000_000, OnlineCPUs: 2},
			PreCPUStats: container.CPUStats{CPUUsage: container.CPUUsage{TotalUsage: 1_000_000}, SystemUsage: 10_000_000, OnlineCPUs: 2},
			MemoryStats: container.MemoryStats{Usage: 64 << 20, Limit: 256 << 20},
			PidsStats:   container.PidsStats{Current: 3},
		})
	case "GET export":
		w.Header().Set("Content-Type", "application/x-tar")
		fmt.Fprint(w, "tar of "+c.name)
	case "POST resize":
		w.WriteHeader(http.StatusOK)
	case "GET top":
		writeJSON(w, container.TopResponse{Titles: []string{"PID", "CMD"}, Processes: [][]string{{"1", strings.Join(c.cfg.Cmd, " ")}}})
	case "POST rename":
		f.mu.Lock()
		c.name = q.Get("name")
		f.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	case "POST exec":
		var req container.ExecCreateRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		f.mu.Lock()
		f.nextID++
		e := &fakeExec{id: fmt.Sprintf("exec%d", f.nextID), container: c.id, cmd: req.Cmd}
		f.execs[e.id] = e
		f.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(container.ExecCreateResponse{ID: e.id})
	default:
		apiError(w, http.StatusNotFound, "page not found: "+r.Method+" "+op)
	}
}

func (f *fakeEngine) remove(c *fakeContainer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if i := slices.Index(f.containers, c); i >= 0 {
		f.containers = slices.Delete(f.containers, i, i+1)
		close(c.removed)
	}
}

func (f *fakeEngine) start(w http.ResponseWriter, c *fakeContainer) {
	f.mu.Lock()
	if c.state == container.StateRunning {
		f.mu.Unlock()
		w.WriteHeader(http.StatusNotModified)
		return
	}
	prog := c.cfg.Cmd
	if len(prog) > 0 && prog[0] == "nope" {
		f.mu.Unlock()
		apiError(w, http.StatusBadRequest, `failed to create task for container: exec: "nope": executable file not found in $PATH`)
		return
	}
	select {
	case <-c.exited: // exited before: waits from now on are for the next exit
		c.exited = make(chan struct{})
	default:
	}
	c.state, c.stop = container.StateRunning, make(chan int, 1)
	attached := c.attached
	c.attached = nil
	f.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
	go f.runProgram(c, prog, attached)
}
