package dockerapi

import (
	"net/http"

	"github.com/moby/moby/api/types/network"
)

func (s *Server) networkList(w http.ResponseWriter, r *http.Request, _ params) error {
	q, err := query(r)
	if err != nil {
		return err
	}
	f, err := q.filters()
	if err != nil {
		return err
	}
	list, err := s.b.NetworkList(r.Context(), f)
	if err != nil {
		return err
	}
	if list == nil {
		list = []network.Summary{}
	}
	writeJSON(w, http.StatusOK, list)
	return nil
}

func (s *Server) networkInspect(w http.ResponseWriter, r *http.Request, p params) error {
	n, err := s.b.NetworkInspect(r.Context(), p.get("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, &n)
	return nil
}

func (s *Server) networkCreate(w http.ResponseWriter, r *http.Request, _ params) error {
	var req network.CreateRequest
	// CheckDuplicate (before API 1.44) is what happens anyway.
	if _, err := readJSON(w, r, &req, "CheckDuplicate"); err != nil {
		return err
	}
	if req.Name == "" {
		return invalidf("a network name is required")
	}
	resp, err := s.b.NetworkCreate(r.Context(), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, &resp)
	return nil
}

func (s *Server) networkRemove(w http.ResponseWriter, r *http.Request, p params) error {
	if err := s.b.NetworkRemove(r.Context(), p.get("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) networkConnect(w http.ResponseWriter, r *http.Request, p params) error {
	var req network.ConnectRequest
	if _, err := readJSON(w, r, &req); err != nil {
		return err
	}
	if req.Container == "" {
		return invalidf("a container is required")
	}
	if err := s.b.NetworkConnect(r.Context(), p.get("id"), req.Container, req.EndpointConfig); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) networkDisconnect(w http.ResponseWriter, r *http.Request, p params) error {
	var req network.DisconnectRequest
	if _, err := readJSON(w, r, &req); err != nil {
		return err
	}
	if req.Container == "" {
		return invalidf("a container is required")
	}
	if err := s.b.NetworkDisconnect(r.Context(), p.get("id"), req.Container, req.Force); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) networkPrune(w http.ResponseWriter, r *http.Request, _ params) error {
	q, err := query(r)
	if err != nil {
		return err
	}
	f, err := q.filters()
	if err != nil {
		return err
	}
	rep, err := s.b.NetworkPrune(r.Context(), f)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, &rep)
	return nil
}
