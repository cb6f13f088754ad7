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
			s.noteHealth(err)
			return err
		}
	}
	s.noteHealth(nil)
	writeJSON(w, http.StatusOK, &wire.Health{Status: "ok"})
	return nil
}

// noteHealth logs a change of the health check's answer once: a failure
// at warn, the return to ok at info. A load balancer probes every few
// seconds, and each probe that repeats the last answer is logged at
// debug only: a drain would otherwise log a warning a probe.
func (s *server) noteHealth(err error) {
	now := ""
	if err != nil {
		now = cove.ErrorMessage(err)
	}
	s.healthLog.mu.Lock()
	last := s.healthLog.last
	s.healthLog.last = now
	s.healthLog.mu.Unlock()
	switch {
	case now == last:
		if err != nil {
			s.log.Debug("health check failing still", "err", now)
		}
	case err != nil:
		s.log.Warn("health check failing: GET /healthz answers 503", "err", now)
	default:
		s.log.Info("health check ok again", "was", last)
	}
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
