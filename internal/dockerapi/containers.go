package dockerapi

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// validContainerName is dockerd's rule for container names.
var validContainerName = regexp.MustCompile(`^/?[a-zA-Z0-9][a-zA-Z0-9_.-]+$`)

func (s *Server) containerCreate(w http.ResponseWriter, r *http.Request, p params) error {
	q, err := query(r)
	if err != nil {
		return err
	}
	name := q.get("name")
	if name != "" && !validContainerName.MatchString(name) {
		return invalidf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name)
	}
	if pl := q.get("platform"); pl != "" && p.version.atLeast("1.41") {
		if err := s.checkPlatform(pl); err != nil {
			return err
		}
	}
	var req container.CreateRequest
	legacy, err := readJSON(w, r, &req, createLegacyFields...)
	if err != nil {
		return err
	}
	if req.Config == nil {
		return invalidf("config cannot be empty in order to create a container")
	}
	if req.HostConfig == nil {
		req.HostConfig = &container.HostConfig{}
	}
	if req.NetworkingConfig == nil {
		req.NetworkingConfig = &network.NetworkingConfig{}
	}
	// "default" (or nothing) means the OS's default network, "bridge" on
	// Linux; dockerd rewrites it at its edge, and so do we.
	if nm := req.HostConfig.NetworkMode; nm == "" || nm == network.NetworkDefault {
		req.HostConfig.NetworkMode = network.NetworkBridge
		if ep, ok := req.NetworkingConfig.EndpointsConfig[network.NetworkDefault]; ok {
			req.NetworkingConfig.EndpointsConfig[network.NetworkBridge] = ep
			delete(req.NetworkingConfig.EndpointsConfig, network.NetworkDefault)
		}
	}
	if err := migrateMACAddress(&req, legacy["MacAddress"], p.version); err != nil {
		return err
	}
	resp, err := s.b.ContainerCreate(r.Context(), name, req)
	if err != nil {
		return err
	}
	if resp.Warnings == nil {
		resp.Warnings = []string{}
	}
	writeJSON(w, http.StatusCreated, &resp)
	return nil
}

// createLegacyFields are fields of a container create that clients of
// older API versions send and the current types no longer have.
var createLegacyFields = []string{
	"MacAddress",                 // container-wide MAC address, before API 1.52
	"HostConfig.KernelMemory",    // ignored by dockerd since API 1.42
	"HostConfig.KernelMemoryTCP", // likewise
	"HostConfig.Capabilities",    // API 1.40 only; CapAdd/CapDrop replaced it
}

// migrateMACAddress moves the container-wide MAC address older clients
// send to the endpoint of the container's network, as dockerd does.
func migrateMACAddress(req *container.CreateRequest, raw json.RawMessage, v apiVersion) error {
	var mac string
	if len(raw) == 0 || json.Unmarshal(raw, &mac) != nil || mac == "" {
		return nil
	}
	if v.atLeast("1.52") {
		return invalidf("container-wide MAC address no longer supported; use endpoint-specific MAC address instead")
	}
	var hw network.HardwareAddr
	if err := hw.UnmarshalText([]byte(mac)); err != nil {
		return invalidf("invalid MAC address %q: %v", mac, err)
	}
	nm := string(req.HostConfig.NetworkMode)
	if nm != network.NetworkBridge && (nm == network.NetworkHost || nm == network.NetworkNone || strings.HasPrefix(nm, "container:")) {
		return invalidf("conflicting options: mac-address and the network mode")
	}
	if req.NetworkingConfig.EndpointsConfig == nil {
		req.NetworkingConfig.EndpointsConfig = map[string]*network.EndpointSettings{}
	}
	ep := req.NetworkingConfig.EndpointsConfig[nm]
	if ep == nil {
		ep = &network.EndpointSettings{}
		req.NetworkingConfig.EndpointsConfig[nm] = ep
	}
	if len(ep.MacAddress) == 0 {
		ep.MacAddress = hw
	}
	return nil
}

// checkPlatform refuses platforms this engine cannot run (it runs its own
// OS and architecture only).
func (s *Server) checkPlatform(pl string) error {
	if err := validPlatform(pl); err != nil {
		return err
	}
	parts := strings.Split(strings.ToLower(pl), "/")
	if parts[0] != s.opts.OSType || len(parts) > 1 && normalizeArch(parts[1]) != normalizeArch(s.opts.Arch) {
		return invalidf("platform %q is not supported: this engine runs %s/%s containers", pl, s.opts.OSType, s.opts.Arch)
	}
	return nil
}

func normalizeArch(a string) string {
	switch a {
	case "x86_64", "x86-64":
		return "amd64"
	case "aarch64":
		return "arm64"
	}
	return a
}

func (s *Server) containerStart(w http.ResponseWriter, r *http.Request, p params) error {
	// A start with a body (a HostConfig) was removed in API 1.24.
	if r.ContentLength > 7 || r.ContentLength == -1 {
		return invalidf("starting container with non-empty request body was deprecated since API v1.22 and removed in v1.24")
	}
	if err := s.b.ContainerStart(r.Context(), p.get("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func stopOptions(r *http.Request, p params) (StopOptions, error) {
	q, err := query(r)
	if err != nil {
		return StopOptions{}, err
	}
	var o StopOptions
	if p.version.atLeast("1.42") {
		o.Signal = q.get("signal")
	}
	t, set, err := q.integer("t")
	if err != nil {
		return o, err
	}
	if set {
		o.Timeout = &t
	}
	return o, nil
}

func (s *Server) containerStop(w http.ResponseWriter, r *http.Request, p params) error {
	o, err := stopOptions(r, p)
	if err != nil {
		return err
	}
	if err := s.b.ContainerStop(r.Context(), p.get("name"), o); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) containerRestart(w http.ResponseWriter, r *http.Request, p params) error {
	o, err := stopOptions(r, p)
	if err != nil {
		return err
	}
	if err := s.b.ContainerRestart(r.Context(), p.get("name"), o); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) containerKill(w http.ResponseWriter, r *http.Request, p params) error {
	q, err := query(r)
	if err != nil {
		return err
	}
	if err := s.b.ContainerKill(r.Context(), p.get("name"), q.get("signal")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) containerRemove(w http.ResponseWriter, r *http.Request, p params) error {
	q, err := query(r)
	if err != nil {
		return err
	}
	if q.flag("link") {
		return &notImplementedError{what: "removing container links"}
	}
	err = s.b.ContainerRemove(r.Context(), p.get("name"), RemoveOptions{Force: q.flag("force"), RemoveVolumes: q.flag("v")})
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) containerList(w http.ResponseWriter, r *http.Request, _ params) error {
	q, err := query(r)
	if err != nil {
		return err
	}
	f, err := q.filters()
	if err != nil {
		return err
	}
	limit, _, err := q.integer("limit")
	if err != nil {
		return err
	}
	list, err := s.b.ContainerList(r.Context(), ListOptions{All: q.flag("all"), Limit: limit, Size: q.flag("size"), Filters: f})
	if err != nil {
		return err
	}
	if list == nil {
		list = []container.Summary{}
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

func (s *Server) containerInspect(w http.ResponseWriter, r *http.Request, p params) error {
	q, err := query(r)
	if err != nil {
		return err
	}
	c, err := s.b.ContainerInspect(r.Context(), p.get("name"), q.flag("size"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, &c)
	return nil
}

func (s *Server) containerResize(w http.ResponseWriter, r *http.Request, p params) error {
	h, wd, err := resizeQuery(r)
	if err != nil {
		return err
	}
	if err := s.b.ContainerResize(r.Context(), p.get("name"), h, wd); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func resizeQuery(r *http.Request) (height, width uint, err error) {
	q, err := query(r)
	if err != nil {
		return 0, 0, err
	}
	if height, err = q.dimension("h"); err != nil {
		return 0, 0, err
	}
	if width, err = q.dimension("w"); err != nil {
		return 0, 0, err
	}
	return height, width, nil
}

func (s *Server) containerTop(w http.ResponseWriter, r *http.Request, p params) error {
	q, err := query(r)
	if err != nil {
		return err
	}
	top, err := s.b.ContainerTop(r.Context(), p.get("name"), q.get("ps_args"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, &top)
	return nil
}

func (s *Server) containerPrune(w http.ResponseWriter, r *http.Request, _ params) error {
	q, err := query(r)
	if err != nil {
		return err
	}
	f, err := q.filters()
	if err != nil {
		return err
	}
	rep, err := s.b.ContainerPrune(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, &rep)
	return nil
}

func (s *Server) containerRename(w http.ResponseWriter, r *http.Request, p params) error {
	q, err := query(r)
	if err != nil {
		return err
	}
	name := q.get("name")
	if name == "" {
		return invalidf("a new name is required to rename a container")
	}
	if !validContainerName.MatchString(name) {
		return invalidf("Invalid container name (%s), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed", name)
	}
	if err := s.b.ContainerRename(r.Context(), p.get("name"), name); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// containerExport streams the container's filesystem as a tar.
func (s *Server) containerExport(w http.ResponseWriter, r *http.Request, p params) error {
	w.Header().Set("Content-Type", "application/x-tar")
	aw := &abortingWriter{w: w}
	return aw.finish(s.b.ContainerExport(r.Context(), p.get("name"), aw))
}

func (s *Server) containerCommit(w http.ResponseWriter, r *http.Request, _ params) error {
	q, err := query(r)
	if err != nil {
		return err
	}
	var cfg *container.Config
	if _, err := readJSON(w, r, &cfg, "MacAddress"); err != nil {
		return err
	}
	ref := q.get("repo")
	if tag := q.get("tag"); tag != "" {
		if ref == "" {
			return invalidf("a tag needs a repository")
		}
		ref += ":" + tag
	}
	id, err := s.b.ContainerCommit(r.Context(), q.get("container"), CommitOptions{
		Reference: ref,
		Author:    q.get("author"),
		Comment:   q.get("comment"),
		Pause:     q.flagOr("pause", true),
		Changes:   q["changes"],
		Config:    cfg,
	})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, &container.CommitResponse{ID: id})
	return nil
}

// abortingWriter is for bodies that cannot carry an error (tar streams):
// once written to, a later failure breaks the connection instead, so the
// client sees a truncated body rather than a valid-looking one.
type abortingWriter struct {
	w       http.ResponseWriter
	started bool
}

func (a *abortingWriter) Write(b []byte) (int, error) {
	a.started = true
	return a.w.Write(b)
}

// finish returns err if it can still become the response, and otherwise
// aborts the response.
func (a *abortingWriter) finish(err error) error {
	if err != nil && a.started {
		panic(http.ErrAbortHandler)
	}
	return err
}
