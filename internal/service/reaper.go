package service

import (
	"context"
	"time"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/store"
)

// busyCheckInterval is how often the reaper asks the agent of a sandbox
// that is not yet due to stop whether a process runs in it: with 200 idle
// sandboxes, asking every one every second kept a tenth of a core busy.
const busyCheckInterval = 30 * time.Second

// reapLoop stops sandboxes that have been idle past their idle timeout and
// deletes those whose TTL has passed.
func (s *Service) reapLoop() {
	defer s.loop.Done()
	t := time.NewTicker(s.opts.ReapInterval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			s.reap(s.ctx)
		}
	}
}

func (s *Service) reap(ctx context.Context) {
	now := time.Now()
	recs, err := s.allRecords(ctx)
	if err != nil {
		s.log.Warn("reaper: listing sandboxes", "err", err)
		return
	}
	for _, r := range recs {
		if !r.ExpiresAt.IsZero() && now.After(r.ExpiresAt) {
			s.log.Info("deleting sandbox at the end of its TTL", "id", r.ID, "ttl", r.TTL)
			if err := s.remove(ctx, r.ID); err != nil {
				s.log.Warn("reaper: deleting sandbox", "id", r.ID, "err", err)
			}
			continue
		}
		if r.IdleTimeout <= 0 || r.State != cove.StateRunning {
			continue
		}
		s.mu.Lock()
		sb := s.live[r.ID]
		s.mu.Unlock()
		if sb == nil {
			continue
		}
		// Asking the agent wakes it; a sandbox that is not due to stop is
		// asked only now and then, to keep its last activity current
		// while a process of its own runs.
		idle := now.Sub(time.Unix(0, sb.lastActive.Load()))
		due := idle > r.IdleTimeout
		if !due && now.Sub(time.Unix(0, sb.checked.Load())) < busyCheckInterval {
			continue
		}
		sb.checked.Store(now.UnixNano())
		if s.busy(ctx, sb) {
			sb.touch()
			continue
		}
		if due {
			s.log.Info("stopping idle sandbox", "id", r.ID, "idle", idle.Round(time.Second))
			if _, err := s.stop(ctx, r.ID); err != nil {
				s.log.Warn("reaper: stopping sandbox", "id", r.ID, "err", err)
			}
		}
	}
	s.metrics.setStates(s.countStates(recs))
}

// busy reports whether anything runs in the sandbox: a request in
// progress, an execution or a background process.
func (s *Service) busy(ctx context.Context, sb *sandbox) bool {
	if sb.inflight.Load() > 0 {
		return true
	}
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st, err := sb.inst.Agent().Stats(sctx)
	if err != nil {
		return false
	}
	return st.Execs > 0 || st.BackgroundProcesses > 0
}

func (s *Service) countStates(recs []*store.SandboxRecord) map[cove.SandboxState]int {
	n := map[cove.SandboxState]int{cove.StateRunning: 0, cove.StateStopped: 0, cove.StateError: 0}
	for _, r := range recs {
		n[s.toSandbox(r).State]++
	}
	return n
}
