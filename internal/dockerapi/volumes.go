package dockerapi

import (
	"net/http"

	"github.com/moby/moby/api/types/volume"
)

func (s *Server) volumeList(w http.ResponseWriter, r *http.Request, _ params) error {
	q, err := query(r)
	if err != nil {
		return err
	}
	f, err := q.filters()
	if err != nil {
		return err
	}
	list, err := s.b.VolumeList(r.Context(), f)
	if err != nil {
		return err
	}
	if list == nil {
		list = []volume.Volume{}
	}
	writeJSON(w, http.StatusOK, &volume.ListResponse{Volumes: list, Warnings: []string{}})
	return nil
}

func (s *Server) volumeCreate(w http.ResponseWriter, r *http.Request, _ params) error {
	var req volume.CreateRequest
	if _, err := readJSON(w, r, &req); err != nil {
		return err
	}
	if req.ClusterVolumeSpec != nil {
		return &notImplementedError{what: "cluster volumes"}
	}
	v, err := s.b.VolumeCreate(r.Context(), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, &v)
	return nil
}

func (s *Server) volumeInspect(w http.ResponseWriter, r *http.Request, p params) error {
	v, err := s.b.VolumeInspect(r.Context(), p.get("name"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, &v)
	return nil
}

func (s *Server) volumeRemove(w http.ResponseWriter, r *http.Request, p params) error {
	q, err := query(r)
	if err != nil {
		return err
	}
	if err := s.b.VolumeRemove(r.Context(), p.get("name"), q.flag("force")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) volumePrune(w http.ResponseWriter, r *http.Request, _ params) error {
	q, err := query(r)
	if err != nil {
		return err
	}
	f, err := q.filters()
	if err != nil {
		return err
	}
	rep, err := s.b.VolumePrune(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, &rep)
	return nil
}
