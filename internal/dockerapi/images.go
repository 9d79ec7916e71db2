package dockerapi

import (
	"encoding/base64"
	"net/http"
	"slices"
	"strings"

	"github.com/moby/moby/api/pkg/authconfig"
	"github.com/moby/moby/api/types/image"
	"github.com/moby/moby/api/types/registry"
)

func (s *Server) imageList(w http.ResponseWriter, r *http.Request, _ params) error {
	q, err := query(r)
	if err != nil {
		return err
	}
	f, err := q.filters()
	if err != nil {
		return err
	}
	list, err := s.b.ImageList(r.Context(), ImageListOptions{All: q.flag("all"), Filters: f})
	if err != nil {
		return err
	}
	if list == nil {
		list = []image.Summary{}
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

func (s *Server) imageInspect(w http.ResponseWriter, r *http.Request, p params) error {
	img, err := s.b.ImageInspect(r.Context(), p.get("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, &img)
	return nil
}

func (s *Server) imageHistory(w http.ResponseWriter, r *http.Request, p params) error {
	h, err := s.b.ImageHistory(r.Context(), p.get("name"))
	if err != nil {
		return err
	}
	if h == nil {
		h = []image.HistoryResponseItem{}
	}
	writeJSON(w, http.StatusOK, h)
	return nil
}

func (s *Server) imageTag(w http.ResponseWriter, r *http.Request, p params) error {
	q, err := query(r)
	if err != nil {
		return err
	}
	target, err := repoTag(q.get("repo"), q.get("tag"))
	if err != nil {
		return err
	}
	if target == "" {
		return invalidf("repository name must have at least one component")
	}
	if err := s.b.ImageTag(r.Context(), p.get("name"), target); err != nil {
		return err
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

// repoTag joins a repository and an optional tag (or digest) into a
// reference.
func repoTag(repo, tag string) (string, error) {
	switch {
	case tag == "":
		return repo, nil
	case repo == "":
		return "", invalidf("a tag needs a repository")
	case strings.Contains(tag, ":"):
		return repo + "@" + tag, nil
	default:
		return repo + ":" + tag, nil
	}
}

func (s *Server) imageRemove(w http.ResponseWriter, r *http.Request, p params) error {
	q, err := query(r)
	if err != nil {
		return err
	}
	resp, err := s.b.ImageRemove(r.Context(), p.get("name"), q.flag("force"), !q.flag("noprune"))
	if err != nil {
		return err
	}
	if resp == nil {
		resp = []image.DeleteResponse{}
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

func (s *Server) imagePrune(w http.ResponseWriter, r *http.Request, _ params) error {
	q, err := query(r)
	if err != nil {
		return err
	}
	f, err := q.filters()
	if err != nil {
		return err
	}
	rep, err := s.b.ImagePrune(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, &rep)
	return nil
}

// imageCreate pulls (fromImage) and streams the progress. Importing
// (fromSrc) is not served.
func (s *Server) imageCreate(w http.ResponseWriter, r *http.Request, p params) error {
	q, err := query(r)
	if err != nil {
		return err
	}
	from := strings.TrimSuffix(q.get("fromImage"), ":")
	if from == "" {
		if q.get("fromSrc") != "" {
			return &notImplementedError{what: "importing images"}
		}
		return invalidf("fromImage is required")
	}
	ref, err := repoTag(from, q.get("tag"))
	if err != nil {
		return err
	}
	var platform string
	if p.version.atLeast("1.32") {
		platform = q.get("platform")
		if err := validPlatform(platform); err != nil {
			return err
		}
	}
	ctx, cancel := streamContext(r)
	defer cancel()
	ps := newProgressStream(w, statusLines)
	return ps.finish(s.b.ImagePull(ctx, ref, platform, registryAuth(r), ps))
}

func (s *Server) imagePush(w http.ResponseWriter, r *http.Request, p params) error {
	q, err := query(r)
	if err != nil {
		return err
	}
	ref, err := repoTag(p.get("name"), q.get("tag"))
	if err != nil {
		return err
	}
	ctx, cancel := streamContext(r)
	defer cancel()
	ps := newProgressStream(w, statusLines)
	return ps.finish(s.b.ImagePush(ctx, ref, registryAuth(r), ps))
}

// imageLoad loads an image archive from the body and reports each image
// loaded as dockerd does ("Loaded image: busybox:latest").
func (s *Server) imageLoad(w http.ResponseWriter, r *http.Request, _ params) error {
	q, err := query(r)
	if err != nil {
		return err
	}
	quiet := q.flagOr("quiet", true)
	_ = http.NewResponseController(w).EnableFullDuplex()
	ctx, cancel := streamContext(r)
	defer cancel()
	ps := newProgressStream(w, streamLines)
	var progress writerFunc = func(b []byte) (int, error) { return len(b), nil }
	if !quiet {
		progress = ps.Write
	}
	names, err := s.b.ImageLoad(ctx, r.Body, progress)
	if err == nil {
		for _, n := range names {
			line := "Loaded image: " + n
			if strings.HasPrefix(n, "sha256:") {
				line = "Loaded image ID: " + n
			}
			if err = ps.send(ps.lineMessage(line)); err != nil {
				break
			}
		}
	}
	return ps.finish(err)
}

// imageSave writes a tar of the images named by the path or by `names`.
func (s *Server) imageSave(w http.ResponseWriter, r *http.Request, p params) error {
	q, err := query(r)
	if err != nil {
		return err
	}
	names := q["names"]
	if n := p.get("name"); n != "" {
		names = []string{n}
	}
	if len(names) == 0 {
		return invalidf("no images named: give at least one `names` parameter")
	}
	w.Header().Set("Content-Type", "application/x-tar")
	aw := &abortingWriter{w: w}
	return aw.finish(s.b.ImageSave(r.Context(), names, aw))
}

// registryAuth decodes X-Registry-Auth. Like dockerd, a malformed header
// counts as no credentials.
func registryAuth(r *http.Request) RegistryAuth {
	ac, err := authconfig.Decode(r.Header.Get(registry.AuthHeader))
	if err != nil || ac == nil {
		return RegistryAuth{}
	}
	a := RegistryAuth{Username: ac.Username, Password: ac.Password, IdentityToken: ac.IdentityToken, ServerAddress: ac.ServerAddress}
	if a.Username == "" && ac.Auth != "" {
		if b, err := base64.StdEncoding.DecodeString(ac.Auth); err == nil {
			a.Username, a.Password, _ = strings.Cut(string(b), ":")
		}
	}
	return a
}

// validPlatform checks the form os[/arch[/variant]] ("" is fine).
func validPlatform(pl string) error {
	if pl == "" {
		return nil
	}
	parts := strings.Split(pl, "/")
	if len(parts) > 3 || slices.Contains(parts, "") {
		return invalidf("invalid platform %q: want os[/arch[/variant]]", pl)
	}
	return nil
}

// writerFunc adapts a function to io.Writer.
type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }
