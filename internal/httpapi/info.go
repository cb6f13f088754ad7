package httpapi

import (
	"context"
	"net/http"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/wire"
)

// healthChecker is a service that can say it takes no new work, such as
// *service.Service while it shuts down or while its sandboxes' workspaces
// cannot be written.
type healthChecker interface {
	// Health returns nil while the service takes new work.
	// Errors: unavailable.
	Health(ctx context.Context) error
}

// health answers GET /healthz: the process serves requests and, when the
// service can tell, takes new work (503 while it drains for a shutdown,
// or while the workspace volume is read-only). It needs no key and says
// nothing else.
func (s *server) health(w http.ResponseWriter, r *http.Request) error {
	if h, ok := s.svc.(healthChecker); ok {
		if err := h.Health(r.Context()); err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, &wire.Health{Status: "ok"})
	return nil
}

func (s *server) version(w http.ResponseWriter, r *http.Request) error {
	v, err := s.svc.Version(r.Context())
	if err != nil {
		return err
	}
	if v.Languages == nil {
		v.Languages = []string{}
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

// metrics answers GET /metrics with Options.Metrics.
func (s *server) metrics(w http.ResponseWriter, r *http.Request) error {
	if s.opts.Metrics == nil {
		return cove.Errorf(cove.CodeNotFound, "this server exports no metrics")
	}
	s.opts.Metrics.ServeHTTP(w, r)
	return nil
}
