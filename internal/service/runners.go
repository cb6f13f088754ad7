package service

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/runtime"
)

// DefaultRunReuseIdle is how long a reset sandbox of a one-call run waits
// for the next run of its owner before it is destroyed.
const DefaultRunReuseIdle = 30 * time.Second

// runnersMaxTotal bounds the reset sandboxes kept for all owners together.
const runnersMaxTotal = 64

// resetTimeout bounds a reset; a sandbox that takes longer is destroyed.
const resetTimeout = 2 * time.Second

// runners keeps the sandboxes of finished one-call runs (Run), reset to
// the state they booted in, for the next run of the same owner with the
// same limits: a reset costs a fraction of creating and destroying a
// sandbox. A sandbox never passes from one owner to another, and one that
// the agent cannot reset (it ran background processes, terminals or
// contexts, left System V IPC objects, or holds too many files) is
// destroyed as before.
type runners struct {
	perOwner int           // idle sandboxes kept per owner (0: reuse is off)
	idle     time.Duration // how long one is kept

	mu     sync.Mutex
	closed bool
	ready  map[runnerKey][]idleRunner
	owners map[string]int // idle sandboxes by owner
	total  int

	// runs counts the one-call runs that got a sandbox, hits those that
	// got a kept one.
	runs, hits atomic.Int64
}

// runnerKey is what a sandbox must match to be reused: its owner, and the
// limits it was created with. Those of one execution (its timeout and
// output cap) do not count: each run brings its own.
type runnerKey struct {
	owner  string
	limits cove.Limits
}

func keyOf(owner string, limits cove.Limits) runnerKey {
	limits.Timeout, limits.OutputBytes = 0, 0
	return runnerKey{owner, limits}
}

type idleRunner struct {
	inst  runtime.Instance
	since time.Time
}

func newRunners(perOwner int, idle time.Duration) *runners {
	if idle <= 0 {
		idle = DefaultRunReuseIdle
	}
	return &runners{perOwner: perOwner, idle: idle, ready: map[runnerKey][]idleRunner{}, owners: map[string]int{}}
}

func (r *runners) enabled() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.perOwner > 0
}

// take hands over a reset sandbox of owner with limits, the most recently
// used first, or nil.
func (r *runners) take(owner string, limits cove.Limits) runtime.Instance {
	k := keyOf(owner, limits)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.perOwner <= 0 {
		return nil
	}
	for list := r.ready[k]; len(list) > 0; list = r.ready[k] {
		it := list[len(list)-1]
		r.drop(k, len(list)-1)
		select {
		case <-it.inst.Done():
			go it.inst.Destroy(context.Background())
			continue
		default:
		}
		return it.inst
	}
	return nil
}

// drop removes the i-th idle sandbox of k from the books; r.mu is held.
func (r *runners) drop(k runnerKey, i int) {
	list := r.ready[k]
	list = append(list[:i], list[i+1:]...)
	if len(list) == 0 {
		delete(r.ready, k)
	} else {
		r.ready[k] = list
	}
	r.total--
	if r.owners[k.owner]--; r.owners[k.owner] == 0 {
		delete(r.owners, k.owner)
	}
}

// room reports whether a sandbox of owner would be kept.
func (r *runners) room(owner string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.closed && r.owners[owner] < r.perOwner && r.total < runnersMaxTotal
}

// put keeps a reset sandbox; false means it was not kept and the caller
// destroys it.
func (r *runners) put(owner string, limits cove.Limits, inst runtime.Instance) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || r.owners[owner] >= r.perOwner || r.total >= runnersMaxTotal {
		return false
	}
	k := keyOf(owner, limits)
	r.ready[k] = append(r.ready[k], idleRunner{inst: inst, since: time.Now()})
	r.owners[owner]++
	r.total++
	return true
}

// expired takes out the sandboxes idle since before now minus r.idle, for
// the caller to destroy.
func (r *runners) expired(now time.Time) []runtime.Instance {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []runtime.Instance
	for k, list := range r.ready {
		for i := len(list) - 1; i >= 0; i-- {
			if now.Sub(list[i].since) > r.idle {
				out = append(out, list[i].inst)
				r.drop(k, i)
				list = r.ready[k]
			}
		}
	}
	return out
}

// close keeps nothing from now on and returns what was kept, for the
// caller to destroy.
func (r *runners) close() []runtime.Instance {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	return r.expired(time.Now().Add(r.idle + time.Hour))
}

// count returns how many reset sandboxes are kept.
func (r *runners) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.total
}

// recycle resets sb and keeps it for owner's next run; false means it was
// not kept.
func (s *Service) recycle(ctx context.Context, sb *sandbox, owner string, limits cove.Limits) bool {
	if !s.runners.room(owner) {
		return false
	}
	sb.ctxMu.Lock()
	contexts := len(sb.contexts)
	sb.ctxMu.Unlock()
	if contexts > 0 {
		return false
	}
	select {
	case <-sb.inst.Done():
		return false
	default:
	}
	// The reset must not race a request that found the sandbox before it
	// left s.live (an upload, an exec through its id): wait for them all.
	// None can begin any more.
	deadline := time.Now().Add(resetTimeout)
	for sb.inflight.Load() > 0 {
		if time.Now().After(deadline) || s.ctx.Err() != nil {
			s.log.Debug("one-call sandbox not reused: requests still in progress", "id", sb.id)
			return false
		}
		time.Sleep(time.Millisecond)
	}
	// A reset ends with its deadline or with the service.
	rctx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	res, err := sb.inst.Agent().Reset(rctx)
	if err != nil {
		s.log.Debug("one-call sandbox not reused", "id", sb.id, "why", err)
		return false
	}
	if !s.runners.put(owner, limits, sb.inst) {
		return false
	}
	s.log.Debug("one-call sandbox reset for reuse", "id", sb.id, "removed", res.Entries, "bytes", res.Bytes)
	return true
}

// expireRunners destroys the reset sandboxes kept too long.
func (s *Service) expireRunners(ctx context.Context, now time.Time) {
	for _, inst := range s.runners.expired(now) {
		if err := inst.Destroy(ctx); err != nil {
			s.log.Error("destroying a kept one-call sandbox", "id", inst.ID(), "err", err)
		}
	}
}

// closeRunners destroys every kept one-call sandbox and keeps none from
// now on.
func (s *Service) closeRunners(ctx context.Context) {
	for _, inst := range s.runners.close() {
		if err := inst.Destroy(ctx); err != nil {
			s.log.Error("destroying a kept one-call sandbox", "id", inst.ID(), "err", err)
		}
	}
}

// SetRunReuse changes Options.RunReuse; with 0, the sandboxes kept so far
// are destroyed.
func (s *Service) SetRunReuse(n int) {
	r := s.runners
	r.mu.Lock()
	r.perOwner = n
	r.mu.Unlock()
	if n <= 0 {
		for _, inst := range r.expired(time.Now().Add(r.idle + time.Hour)) {
			inst.Destroy(s.ctx)
		}
	}
}

// RunnersReady returns how many reset one-call sandboxes are kept for
// reuse, and how many runs found one and did not.
func (s *Service) RunnersReady() (ready int, hits, misses int64) {
	hits = s.runners.hits.Load()
	return s.runners.count(), hits, s.runners.runs.Load() - hits
}
