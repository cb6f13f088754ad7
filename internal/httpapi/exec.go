package httpapi

import (
	"net/http"

	"github.com/cove-sandbox/cove/internal/wire"
)

func (s *server) exec(w http.ResponseWriter, r *http.Request) error {
	var req wire.ExecRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	er, err := req.Request()
	if err != nil {
		return err
	}
	st, err := s.svc.Exec(r.Context(), r.PathValue("id"), er)
	if err != nil {
		return err
	}
	return s.answerExecution(w, r, st)
}

func (s *server) runCode(w http.ResponseWriter, r *http.Request) error {
	var req wire.CodeRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	cr, err := req.Request()
	if err != nil {
		return err
	}
	st, err := s.svc.RunCode(r.Context(), r.PathValue("id"), cr)
	if err != nil {
		return err
	}
	return s.answerExecution(w, r, st)
}

func (s *server) run(w http.ResponseWriter, r *http.Request) error {
	var req wire.RunRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	rr, err := req.Request()
	if err != nil {
		return err
	}
	st, err := s.svc.Run(r.Context(), rr)
	if err != nil {
		return err
	}
	return s.answerExecution(w, r, st)
}
