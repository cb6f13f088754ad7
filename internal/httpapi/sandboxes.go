package httpapi

import (
	"net/http"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/wire"
)

func (s *server) createSandbox(w http.ResponseWriter, r *http.Request) error {
	var req wire.CreateSandbox
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	spec, err := req.Spec()
	if err != nil {
		return err
	}
	sb, err := s.svc.CreateSandbox(r.Context(), spec)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/sandboxes/"+sb.ID)
	writeJSON(w, http.StatusCreated, wire.SandboxFrom(sb))
	return nil
}

func (s *server) listSandboxes(w http.ResponseWriter, r *http.Request) error {
	opts, err := wire.ParseListQuery(r.URL.Query())
	if err != nil {
		return err
	}
	list, err := s.svc.ListSandboxes(r.Context(), opts)
	if err != nil {
		return err
	}
	out := &wire.SandboxList{Sandboxes: make([]*wire.Sandbox, 0, len(list.Sandboxes)), NextPageToken: list.NextPageToken}
	for _, sb := range list.Sandboxes {
		out.Sandboxes = append(out.Sandboxes, wire.SandboxFrom(sb))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *server) getSandbox(w http.ResponseWriter, r *http.Request) error {
	sb, err := s.svc.GetSandbox(r.Context(), r.PathValue("id"))
	return answerSandbox(w, sb, err)
}

func (s *server) updateSandbox(w http.ResponseWriter, r *http.Request) error {
	var req wire.UpdateSandbox
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	sb, err := s.svc.UpdateSandbox(r.Context(), r.PathValue("id"), req.Update())
	return answerSandbox(w, sb, err)
}

func (s *server) deleteSandbox(w http.ResponseWriter, r *http.Request) error {
	if err := s.svc.DeleteSandbox(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *server) stopSandbox(w http.ResponseWriter, r *http.Request) error {
	sb, err := s.svc.StopSandbox(r.Context(), r.PathValue("id"))
	return answerSandbox(w, sb, err)
}

func (s *server) startSandbox(w http.ResponseWriter, r *http.Request) error {
	sb, err := s.svc.StartSandbox(r.Context(), r.PathValue("id"))
	return answerSandbox(w, sb, err)
}

func answerSandbox(w http.ResponseWriter, sb *cove.Sandbox, err error) error {
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, wire.SandboxFrom(sb))
	return nil
}
