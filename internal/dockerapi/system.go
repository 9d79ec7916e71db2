package dockerapi

import (
	"encoding/json"
	"net/http"
	"runtime"
	"strconv"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/system"
)

// ping answers GET and HEAD /_ping. Its headers drive the client's
// version negotiation; Builder-Version 1 makes the CLI use the classic
// builder (POST /build) rather than BuildKit.
func (s *Server) ping(w http.ResponseWriter, r *http.Request, _ params) error {
	h := w.Header()
	h.Set("Cache-Control", "no-cache, no-store, must-revalidate")
	h.Set("Pragma", "no-cache")
	h.Set("Docker-Experimental", strconv.FormatBool(s.opts.Experimental))
	h.Set("Builder-Version", "1")
	h.Set("Swarm", "inactive")
	h.Set("Content-Type", "text/plain; charset=utf-8")
	if r.Method == http.MethodHead {
		h.Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
		return nil
	}
	_, err := w.Write([]byte("OK"))
	return err
}

func (s *Server) version(w http.ResponseWriter, _ *http.Request, _ params) error {
	o := s.opts
	writeJSON(w, http.StatusOK, &system.VersionResponse{
		Platform:      system.PlatformInfo{Name: "Skiff Engine"},
		Version:       o.Version,
		APIVersion:    APIVersion,
		MinAPIVersion: MinAPIVersion,
		Os:            o.OSType,
		Arch:          o.Arch,
		GitCommit:     o.GitCommit,
		GoVersion:     runtime.Version(),
		KernelVersion: o.KernelVersion,
		Experimental:  o.Experimental,
		BuildTime:     o.BuildTime,
		Components: []system.ComponentVersion{{
			Name:    "Engine",
			Version: o.Version,
			Details: map[string]string{
				"ApiVersion":    APIVersion,
				"MinAPIVersion": MinAPIVersion,
				"GitCommit":     o.GitCommit,
				"GoVersion":     runtime.Version(),
				"Os":            o.OSType,
				"Arch":          o.Arch,
				"KernelVersion": o.KernelVersion,
				"Experimental":  strconv.FormatBool(o.Experimental),
				"BuildTime":     o.BuildTime,
			},
		}},
	})
	return nil
}

// info is the Backend's answer with what the server knows filled in.
func (s *Server) info(w http.ResponseWriter, r *http.Request, _ params) error {
	in, err := s.b.Info(r.Context())
	if err != nil {
		return err
	}
	fill := func(dst *string, v string) {
		if *dst == "" {
			*dst = v
		}
	}
	fill(&in.ServerVersion, s.opts.Version)
	fill(&in.OSType, s.opts.OSType)
	fill(&in.Architecture, s.opts.Arch)
	fill(&in.KernelVersion, s.opts.KernelVersion)
	in.ExperimentalBuild = in.ExperimentalBuild || s.opts.Experimental
	writeJSON(w, http.StatusOK, &in)
	return nil
}

// legacyEvent adds the fields API < 1.52 clients read (status, id, from).
type legacyEvent struct {
	Status string `json:"status,omitempty"`
	ID     string `json:"id,omitempty"`
	From   string `json:"from,omitempty"`
	events.Message
}

// events streams events: the recorded ones since `since`, then live ones
// until `until` (if in the future) or the client leaves.
func (s *Server) events(w http.ResponseWriter, r *http.Request, p params) error {
	q, err := query(r)
	if err != nil {
		return err
	}
	since, err := parseUnixTime(q.get("since"))
	if err != nil {
		return err
	}
	until, err := parseUnixTime(q.get("until"))
	if err != nil {
		return err
	}
	if !until.IsZero() && until.Before(since) {
		return invalidf("`since` time (%s) cannot be after `until` time (%s)", q.get("since"), q.get("until"))
	}
	f, err := q.filters()
	if err != nil {
		return err
	}
	ctx, cancel := streamContext(r)
	defer cancel()

	if since.IsZero() && until.IsZero() {
		// Like dockerd: without since or until, only new events.
		since = time.Now()
	}
	pastOnly := !until.IsZero() && !until.After(time.Now())
	backendUntil := until
	if !pastOnly {
		backendUntil = time.Time{} // follow; the timer below ends it
	}
	past, live, err := s.b.Events(ctx, since, backendUntil, f)
	if err != nil {
		return err
	}

	contentType := "application/jsonl"
	if !p.version.atLeast("1.52") {
		contentType = "application/json"
	}
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(http.StatusOK)
	flush(w)

	enc := json.NewEncoder(w)
	send := func(m events.Message) error {
		var err error
		if p.version.atLeast("1.52") {
			err = enc.Encode(&m)
		} else {
			err = enc.Encode(&legacyEvent{Status: string(m.Action), ID: m.Actor.ID, From: m.Actor.Attributes["image"], Message: m})
		}
		flush(w)
		return err
	}
	for _, m := range past {
		if err := send(m); err != nil {
			return err
		}
	}
	if pastOnly || live == nil {
		return nil
	}
	var timeout <-chan time.Time
	if !until.IsZero() {
		t := time.NewTimer(time.Until(until))
		defer t.Stop()
		timeout = t.C
	}
	for {
		select {
		case m, ok := <-live:
			if !ok {
				return nil
			}
			if !until.IsZero() && eventTime(m).After(until) {
				return nil
			}
			if err := send(m); err != nil {
				return err
			}
		case <-timeout:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

func eventTime(m events.Message) time.Time {
	if m.TimeNano != 0 {
		return time.Unix(0, m.TimeNano)
	}
	return time.Unix(m.Time, 0)
}

func flush(w http.ResponseWriter) { _ = http.NewResponseController(w).Flush() }
