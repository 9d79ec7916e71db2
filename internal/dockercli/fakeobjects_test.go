package dockercli

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/volume"
)

// The fake engine's images, execs, networks and volumes.

func (f *fakeEngine) pull(w http.ResponseWriter, q url.Values) {
	name := familiar(q.Get("fromImage") + ":" + q.Get("tag"))
	f.mu.Lock()
	ok := f.pullable[name]
	if ok {
		f.images[name] = true
	}
	f.mu.Unlock()
	if !ok {
		apiError(w, http.StatusNotFound, "pull access denied for "+name+", repository does not exist or may require 'docker login'")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	_ = enc.Encode(map[string]string{"status": "Pulling from library/" + name})
	_ = enc.Encode(map[string]string{"status": "Status: Downloaded newer image for " + name})
}

func (f *fakeEngine) execOp(w http.ResponseWriter, r *http.Request, id, op string) {
	f.mu.Lock()
	e := f.execs[id]
	f.mu.Unlock()
	if e == nil {
		apiError(w, http.StatusNotFound, "No such exec instance: "+id)
		return
	}
	switch r.Method + " " + op {
	case "POST start":
		// Read the whole body: unread bytes would reset the hijacked connection.
		var req container.ExecStartRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		_, _ = io.Copy(io.Discard, r.Body)
		if req.Detach {
			w.WriteHeader(http.StatusOK)
			return
		}
		conn, _, err := hijack(w, true)
		if err != nil {
			f.t.Errorf("hijack: %v", err)
			return
		}
		defer conn.Close()
		switch {
		case len(e.cmd) > 0 && e.cmd[0] == "echo":
			writeFrame(conn, 1, strings.Join(e.cmd[1:], " ")+"\n", false)
		case len(e.cmd) > 1 && e.cmd[0] == "fail":
			writeFrame(conn, 2, "failing\n", false)
			f.mu.Lock()
			e.exitCode, _ = strconv.Atoi(e.cmd[1])
			f.mu.Unlock()
		}
	case "GET json":
		f.mu.Lock()
		code := e.exitCode
		f.mu.Unlock()
		writeJSON(w, container.ExecInspectResponse{ID: e.id, ContainerID: e.container, ExitCode: &code})
	default:
		apiError(w, http.StatusNotFound, "page not found")
	}
}

func (f *fakeEngine) networkOp(w http.ResponseWriter, r *http.Request, parts []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	find := func(ref string) int {
		return slices.IndexFunc(f.networks, func(n network.Summary) bool { return n.Name == ref || n.ID == ref })
	}
	switch {
	case r.Method == http.MethodGet && len(parts) == 0:
		writeJSON(w, f.networks)
	case r.Method == http.MethodPost && len(parts) == 1 && parts[0] == "create":
		var req network.CreateRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		if find(req.Name) >= 0 {
			apiError(w, http.StatusConflict, "network with name "+req.Name+" already exists")
			return
		}
		f.nextID++
		n := network.Summary{Network: network.Network{Name: req.Name, ID: fmt.Sprintf("%064x", 0xbeef000+f.nextID), Driver: req.Driver, Scope: "local", Internal: req.Internal}}
		if req.IPAM != nil {
			n.IPAM = *req.IPAM
		}
		f.networks = append(f.networks, n)
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(network.CreateResponse{ID: n.ID})
	case r.Method == http.MethodPost && len(parts) == 1 && parts[0] == "prune":
		var report network.PruneReport
		for _, n := range f.networks {
			report.NetworksDeleted = append(report.NetworksDeleted, n.Name)
		}
		f.networks = nil
		writeJSON(w, report)
	case len(parts) >= 1 && find(parts[0]) < 0:
		apiError(w, http.StatusNotFound, "network "+parts[0]+" not found")
	case r.Method == http.MethodPost && len(parts) == 2 && (parts[1] == "connect" || parts[1] == "disconnect"):
		var req struct{ Container string }
		_ = json.NewDecoder(r.Body).Decode(&req)
		if f.findLocked(req.Container) == nil {
			apiError(w, http.StatusNotFound, "No such container: "+req.Container)
			return
		}
		w.WriteHeader(http.StatusOK)
	case r.Method == http.MethodGet && len(parts) == 1:
		writeJSON(w, network.Inspect{Network: f.networks[find(parts[0])].Network})
	case r.Method == http.MethodDelete && len(parts) == 1:
		i := find(parts[0])
		f.networks = slices.Delete(f.networks, i, i+1)
		w.WriteHeader(http.StatusNoContent)
	default:
		apiError(w, http.StatusNotFound, "page not found")
	}
}

func (f *fakeEngine) volumeOp(w http.ResponseWriter, r *http.Request, parts []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	find := func(name string) int {
		return slices.IndexFunc(f.volumes, func(v volume.Volume) bool { return v.Name == name })
	}
	switch {
	case r.Method == http.MethodGet && len(parts) == 0:
		writeJSON(w, volume.ListResponse{Volumes: f.volumes})
	case r.Method == http.MethodPost && len(parts) == 1 && parts[0] == "create":
		var req volume.CreateRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		v := volume.Volume{Name: req.Name, Driver: req.Driver, Labels: req.Labels, Mountpoint: "/var/lib/skiff/volumes/" + req.Name, Scope: "local"}
		f.volumes = append(f.volumes, v)
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(v)
	case r.Method == http.MethodPost && len(parts) == 1 && parts[0] == "prune":
		var report volume.PruneReport
		for _, v := range f.volumes {
			report.VolumesDeleted = append(report.VolumesDeleted, v.Name)
		}
		report.SpaceReclaimed = 2048
		f.volumes = nil
		writeJSON(w, report)
	case len(parts) == 1 && find(parts[0]) < 0:
		apiError(w, http.StatusNotFound, "get "+parts[0]+": no such volume")
	case r.Method == http.MethodGet && len(parts) == 1:
		writeJSON(w, f.volumes[find(parts[0])])
	case r.Method == http.MethodDelete && len(parts) == 1:
		i := find(parts[0])
		f.volumes = slices.Delete(f.volumes, i, i+1)
		w.WriteHeader(http.StatusNoContent)
	default:
		apiError(w, http.StatusNotFound, "page not found")
	}
}
