package httpapi

import (
	"net/http"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/wire"
)

func (s *server) createContext(w http.ResponseWriter, r *http.Request) error {
	var spec cove.ContextSpec
	if err := s.decodeJSON(w, r, &spec); err != nil {
		return err
	}
	c, err := s.svc.CreateContext(r.Context(), r.PathValue("id"), spec)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, c)
	return nil
}

func (s *server) listContexts(w http.ResponseWriter, r *http.Request) error {
	cs, err := s.svc.ListContexts(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if cs == nil {
		cs = []*cove.Context{}
	}
	writeJSON(w, http.StatusOK, &wire.ContextList{Contexts: cs})
	return nil
}

func (s *server) getContext(w http.ResponseWriter, r *http.Request) error {
	c, err := s.svc.GetContext(r.Context(), r.PathValue("id"), r.PathValue("cid"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *server) deleteContext(w http.ResponseWriter, r *http.Request) error {
	if err := s.svc.DeleteContext(r.Context(), r.PathValue("id"), r.PathValue("cid")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) restartContext(w http.ResponseWriter, r *http.Request) error {
	c, err := s.svc.RestartContext(r.Context(), r.PathValue("id"), r.PathValue("cid"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

func (s *server) interruptContext(w http.ResponseWriter, r *http.Request) error {
	if err := s.svc.InterruptContext(r.Context(), r.PathValue("id"), r.PathValue("cid")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// runCell answers with the cell's events as a stream when the client asks
// for one, else with the whole run once it ends.
func (s *server) runCell(w http.ResponseWriter, r *http.Request) error {
	var req wire.CellRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	cr, err := req.Request()
	if err != nil {
		return err
	}
	st, err := s.svc.RunCell(r.Context(), r.PathValue("id"), r.PathValue("cid"), cr)
	if err != nil {
		return err
	}
	if kind := streamKind(r); kind != "" {
		s.writeStream(w, r, st, kind)
		return nil
	}
	run, err := cove.CollectCell(st)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wire.CellRunFrom(run))
	return nil
}
