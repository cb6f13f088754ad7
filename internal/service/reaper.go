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

// deletedMemory is how long the records remember a deleted sandbox, to
// tell a call naming it why it is gone.
const deletedMemory = 24 * time.Hour

func (s *Service) reap(ctx context.Context) {
	now := time.Now()
	s.expireRunners(ctx, now)
	if now.Sub(s.prunedAt) > time.Hour {
		s.prunedAt = now
		if _, err := s.records.PruneDeleted(ctx, now.Add(-deletedMemory)); err != nil {
			s.log.Warn("reaper: forgetting deleted sandboxes", "err", err)
		}
	}
	// Only the records whose TTL has ended are read (an index search),
	// however many stopped sandboxes are kept.
	expired, err := s.listRecords(ctx, store.SandboxFilter{ExpiresBy: now})
	if err != nil {
		s.log.Warn("reaper: listing expired sandboxes", "err", err)
	}
	for _, r := range expired {
		s.log.Info("deleting sandbox at the end of its TTL", "id", r.ID, "ttl", r.TTL)
		if err := s.remove(ctx, r.ID, deleteTTL, "the sandbox's TTL ("+r.TTL.String()+") ended and it was deleted", "its TTL ("+r.TTL.String()+") ended"); err != nil {
			s.log.Warn("reaper: deleting sandbox", "id", r.ID, "err", err)
		}
	}
	// Idle timeouts concern the running sandboxes, which are in memory.
	s.mu.Lock()
	running := make([]*sandbox, 0, len(s.live))
	for _, sb := range s.live {
		if sb.idleTimeout > 0 {
			running = append(running, sb)
		}
	}
	s.mu.Unlock()
	for _, sb := range running {
		// Asking the agent wakes it; a sandbox that is not due to stop is
		// asked only now and then, to keep its last activity current
		// while a process of its own runs.
		idle := sb.idleFor(now)
		due := idle > sb.idleTimeout
		age := now.Sub(sb.born)
		if c := sb.checked.Load(); !due && c != 0 && age-time.Duration(c) < busyCheckInterval {
			continue
		}
		sb.checked.Store(max(int64(age), 1))
		if s.busy(ctx, sb) {
			sb.touch()
			continue
		}
		if due {
			s.log.Info("stopping idle sandbox", "id", sb.id, "idle", idle.Round(time.Second))
			if _, err := s.stop(ctx, sb.id, stopIdle, "idle for "+cove.FormatDuration(sb.idleTimeout)); err != nil {
				s.log.Warn("reaper: stopping sandbox", "id", sb.id, "err", err)
			}
		}
	}
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

// stateCounts counts the sandboxes by state, for the metrics.
func (s *Service) stateCounts(ctx context.Context) (map[cove.SandboxState]int, error) {
	recs, err := s.allRecords(ctx)
	if err != nil {
		return nil, err
	}
	return s.countStates(recs), nil
}

func (s *Service) countStates(recs []*store.SandboxRecord) map[cove.SandboxState]int {
	n := map[cove.SandboxState]int{cove.StateRunning: 0, cove.StateStarting: 0, cove.StateStopping: 0, cove.StateStopped: 0, cove.StateError: 0}
	for _, r := range recs {
		n[s.toSandbox(r).State]++
	}
	return n
}
