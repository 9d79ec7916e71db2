package dockerapi

import (
	"net/http"
	"strings"
)

// handlerFunc is an endpoint. An error it returns before writing anything
// becomes the response (status from its errdefs kind); after that it is
// only logged.
type handlerFunc func(w http.ResponseWriter, r *http.Request, p params) error

// params are what routing learned about a request.
type params struct {
	vars    map[string]string
	version apiVersion
}

func (p params) get(name string) string { return p.vars[name] }

// route is one endpoint. Its pattern's segments are literals, "{name}"
// (one non-empty segment) or at most one "{name...}" (one or more
// segments: image names contain slashes).
type route struct {
	method string
	segs   []string
	h      handlerFunc
}

func (s *Server) routeTable() []route {
	var rs []route
	add := func(method, pattern string, h handlerFunc) {
		rs = append(rs, route{method: method, segs: strings.Split(pattern[1:], "/"), h: h})
	}
	get := func(p string, h handlerFunc) { add(http.MethodGet, p, h) }
	post := func(p string, h handlerFunc) { add(http.MethodPost, p, h) }
	del := func(p string, h handlerFunc) { add(http.MethodDelete, p, h) }

	// system
	get("/_ping", s.ping)
	add(http.MethodHead, "/_ping", s.ping)
	get("/version", s.version)
	get("/info", s.info)
	get("/events", s.events)
	get("/system/df", notImplemented("disk usage"))
	post("/auth", notImplemented("registry login"))

	// containers
	get("/containers/json", s.containerList)
	post("/containers/create", s.containerCreate)
	post("/containers/prune", s.containerPrune)
	get("/containers/{name}/json", s.containerInspect)
	get("/containers/{name}/logs", s.containerLogs)
	get("/containers/{name}/top", s.containerTop)
	get("/containers/{name}/stats", s.containerStats)
	get("/containers/{name}/export", s.containerExport)
	post("/containers/{name}/start", s.containerStart)
	post("/containers/{name}/stop", s.containerStop)
	post("/containers/{name}/restart", s.containerRestart)
	post("/containers/{name}/kill", s.containerKill)
	post("/containers/{name}/wait", s.containerWait)
	post("/containers/{name}/attach", s.containerAttach)
	post("/containers/{name}/resize", s.containerResize)
	post("/containers/{name}/rename", s.containerRename)
	post("/containers/{name}/exec", s.execCreate)
	del("/containers/{name}", s.containerRemove)
	post("/commit", s.containerCommit)
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPut} {
		add(m, "/containers/{name}/archive", notImplemented("copying files to or from containers"))
	}
	get("/containers/{name}/changes", notImplemented("container filesystem changes"))
	get("/containers/{name}/attach/ws", notImplemented("websocket attach"))
	post("/containers/{name}/pause", notImplemented("pausing containers"))
	post("/containers/{name}/unpause", notImplemented("pausing containers"))
	post("/containers/{name}/update", notImplemented("updating containers"))

	// exec
	post("/exec/{id}/start", s.execStart)
	post("/exec/{id}/resize", s.execResize)
	get("/exec/{id}/json", s.execInspect)

	// images
	get("/images/json", s.imageList)
	get("/images/get", s.imageSave)
	get("/images/search", notImplemented("image search"))
	post("/images/create", s.imageCreate)
	post("/images/load", s.imageLoad)
	post("/images/prune", s.imagePrune)
	get("/images/{name...}/json", s.imageInspect)
	get("/images/{name...}/history", s.imageHistory)
	get("/images/{name...}/get", s.imageSave)
	post("/images/{name...}/tag", s.imageTag)
	post("/images/{name...}/push", s.imagePush)
	del("/images/{name...}", s.imageRemove)
	post("/build", s.build)
	post("/build/prune", notImplemented("build cache pruning"))

	// networks
	get("/networks", s.networkList)
	post("/networks/create", s.networkCreate)
	post("/networks/prune", s.networkPrune)
	get("/networks/{id}", s.networkInspect)
	del("/networks/{id}", s.networkRemove)
	post("/networks/{id}/connect", s.networkConnect)
	post("/networks/{id}/disconnect", s.networkDisconnect)

	// volumes
	get("/volumes", s.volumeList)
	post("/volumes/create", s.volumeCreate)
	post("/volumes/prune", s.volumePrune)
	get("/volumes/{name}", s.volumeInspect)
	del("/volumes/{name}", s.volumeRemove)
	return rs
}

// match finds the route for method and path (without the version
// prefix). Like dockerd, a known path with another method is not found.
func (s *Server) match(method, path string) (handlerFunc, map[string]string) {
	if !strings.HasPrefix(path, "/") {
		return nil, nil
	}
	segs := strings.Split(path[1:], "/")
	for _, rt := range s.routes {
		if rt.method != method {
			continue
		}
		if v, ok := matchSegments(rt.segs, segs); ok {
			return rt.h, v
		}
	}
	return nil, nil
}

func matchSegments(pattern, segs []string) (map[string]string, bool) {
	var vars map[string]string
	set := func(k, v string) {
		if vars == nil {
			vars = map[string]string{}
		}
		vars[k] = v
	}
	multi := -1
	for i, p := range pattern {
		if strings.HasSuffix(p, "...}") {
			multi = i
		}
	}
	if multi < 0 && len(segs) != len(pattern) {
		return nil, false
	}
	if multi >= 0 && len(segs) < len(pattern) {
		return nil, false
	}
	one := func(p, seg string) bool {
		if strings.HasPrefix(p, "{") {
			if seg == "" {
				return false
			}
			set(p[1:len(p)-1], seg)
			return true
		}
		return p == seg
	}
	if multi < 0 {
		for i, p := range pattern {
			if !one(p, segs[i]) {
				return nil, false
			}
		}
		return vars, true
	}
	tail := len(pattern) - multi - 1
	for i := range multi {
		if !one(pattern[i], segs[i]) {
			return nil, false
		}
	}
	for i := range tail {
		if !one(pattern[multi+1+i], segs[len(segs)-tail+i]) {
			return nil, false
		}
	}
	middle := segs[multi : len(segs)-tail]
	for _, m := range middle {
		if m == "" {
			return nil, false
		}
	}
	p := pattern[multi]
	set(p[1:len(p)-len("...}")], strings.Join(middle, "/"))
	return vars, true
}

// splitVersion removes a "/v1.NN" prefix from path.
func splitVersion(path string) (version, rest string) {
	if !strings.HasPrefix(path, "/v") {
		return "", path
	}
	end := strings.IndexByte(path[1:], '/')
	if end < 0 {
		return "", path
	}
	v := path[2 : end+1]
	if v == "" || strings.Trim(v, "0123456789.") != "" {
		return "", path
	}
	return v, path[end+1:]
}
