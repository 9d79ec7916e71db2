package apiserver

import (
	"net/http"
	"strings"
)

// requestInfo is what a resource request addresses, parsed from its path
// the way kube-apiserver does:
//
//	/api/v1/namespaces/{ns}/{resource}/{name}/{subresource}
//	/apis/{group}/{version}/{resource}/{name}
type requestInfo struct {
	isResource  bool
	group       string
	version     string
	namespace   string
	resource    string
	name        string
	subresource string
	// verb is the Kubernetes verb: get list watch create update patch
	// delete deletecollection.
	verb string
	// parts of the path after /api or /apis, for discovery requests.
	parts []string
}

func parseRequestInfo(r *http.Request) requestInfo {
	path := strings.Trim(r.URL.Path, "/")
	segs := strings.Split(path, "/")
	var ri requestInfo
	if len(segs) == 0 {
		return ri
	}
	switch segs[0] {
	case "api":
		ri.parts = segs[1:]
		if len(segs) < 3 {
			return ri
		}
		ri.version, segs = segs[1], segs[2:]
	case "apis":
		ri.parts = segs[1:]
		if len(segs) < 4 {
			return ri
		}
		ri.group, ri.version, segs = segs[1], segs[2], segs[3:]
	default:
		return ri
	}
	watchPath := false
	if segs[0] == "watch" { // deprecated /watch/ paths
		watchPath, segs = true, segs[1:]
	}
	if len(segs) >= 2 && segs[0] == "namespaces" {
		if len(segs) == 2 || segs[2] == "finalize" || segs[2] == "status" {
			// The namespace object itself: /namespaces/{name}[/status].
			ri.resource, ri.name = "namespaces", segs[1]
			if len(segs) > 2 {
				ri.subresource = segs[2]
			}
			if len(segs) > 3 {
				return requestInfo{parts: ri.parts}
			}
		} else {
			ri.namespace, segs = segs[1], segs[2:]
		}
	}
	if ri.resource == "" {
		if len(segs) == 0 || len(segs) > 3 || segs[0] == "" {
			return requestInfo{parts: ri.parts}
		}
		ri.resource = segs[0]
		if len(segs) > 1 {
			ri.name = segs[1]
		}
		if len(segs) > 2 {
			ri.subresource = segs[2]
		}
	}
	ri.isResource = true
	q := r.URL.Query()
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		switch {
		case watchPath || isTrue(q.Get("watch")):
			ri.verb = "watch"
		case ri.name == "":
			ri.verb = "list"
		default:
			ri.verb = "get"
		}
	case http.MethodPost:
		ri.verb = "create"
	case http.MethodPut:
		ri.verb = "update"
	case http.MethodPatch:
		ri.verb = "patch"
	case http.MethodDelete:
		if ri.name == "" {
			ri.verb = "deletecollection"
		} else {
			ri.verb = "delete"
		}
	default:
		ri.verb = strings.ToLower(r.Method)
	}
	return ri
}

func isTrue(s string) bool { return s == "true" || s == "1" }
