package service

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/runtime"
)

// refillWait bounds how long the pool waits for work in progress to end
// before it refills.
const refillWait = 100 * time.Millisecond

// pool keeps idle sandboxes of the default shape ready, so that creating
// one is a hand-over; it refills in the background. A refill waits until
// no execution or one-call run is in progress, up to refillWait: starting
// a sandbox takes CPU on both cores of a small machine for a few
// milliseconds, and a one-call run that has just taken a sandbox from the
// pool would otherwise share the machine with the start of its
// replacement.
type pool struct {
	s    *Service
	size int
	wait time.Duration // refillWait, or longer in tests
	// retry is how long a failed creation waits before the next try.
	retry time.Duration

	mu    sync.Mutex
	ready []runtime.Instance
	wake  chan struct{}
	idle  chan struct{} // a signal that nothing is in progress any more
	done  chan struct{}
	wg    sync.WaitGroup
}

func newPool(s *Service, size int) *pool {
	return &pool{s: s, size: size, wait: refillWait, retry: 5 * time.Second, wake: make(chan struct{}, 1), idle: make(chan struct{}, 1), done: make(chan struct{})}
}

// notifyIdle tells a waiting refill that nothing is in progress any more.
func (p *pool) notifyIdle() {
	select {
	case p.idle <- struct{}{}:
	default:
	}
}

// awaitIdle returns once no execution or one-call run is in progress, after
// p.wait at most, or false when the service is closing.
func (p *pool) awaitIdle() bool {
	select {
	case <-p.idle: // a stale signal
	default:
	}
	p.s.mu.Lock()
	busy := p.s.inProgress
	p.s.mu.Unlock()
	if busy == 0 {
		return true
	}
	t := time.NewTimer(p.wait)
	defer t.Stop()
	select {
	case <-p.idle:
	case <-t.C:
	case <-p.s.ctx.Done():
		return false
	}
	return true
}

func (p *pool) start() {
	if p.size <= 0 {
		return
	}
	p.wg.Add(1)
	go p.fill()
}

// take hands over a ready sandbox if limits are the pool's shape.
func (p *pool) take(limits cove.Limits) runtime.Instance {
	if p.size <= 0 || limits != p.s.defaults {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.ready) > 0 {
		inst := p.ready[0]
		p.ready = p.ready[1:]
		select {
		case p.wake <- struct{}{}:
		default:
		}
		select {
		case <-inst.Done():
			go inst.Destroy(context.Background())
			continue
		default:
		}
		p.s.metrics.setPool(len(p.ready))
		return inst
	}
	return nil
}

func (p *pool) fill() {
	defer p.wg.Done()
	// lastErr is the failure last logged as a warning: the same one again,
	// every 5 s, is logged at debug level until something changes.
	lastErr := ""
	for {
		p.mu.Lock()
		missing := p.size - len(p.ready)
		p.mu.Unlock()
		if missing > 0 {
			if !p.awaitIdle() {
				return
			}
			inst, err := p.s.createInstance(p.s.ctx, runtime.Spec{ID: newID(), Limits: p.s.defaults})
			if err != nil {
				if p.s.ctx.Err() != nil {
					return
				}
				if msg := err.Error(); msg != lastErr {
					p.s.log.Warn(fmt.Sprintf("warm pool: creating a sandbox (retrying every %s; the same failure again is logged at debug level)", p.retry), "err", err)
					lastErr = msg
				} else {
					p.s.log.Debug("warm pool: creating a sandbox", "err", err)
				}
				select {
				case <-p.s.ctx.Done():
					return
				case <-time.After(p.retry):
				}
				continue
			}
			lastErr = ""
			p.mu.Lock()
			p.ready = append(p.ready, inst)
			n := len(p.ready)
			p.mu.Unlock()
			p.s.metrics.setPool(n)
			continue
		}
		select {
		case <-p.s.ctx.Done():
			return
		case <-p.wake:
		}
	}
}

// close stops refilling and destroys the ready sandboxes.
func (p *pool) close(ctx context.Context) {
	p.wg.Wait()
	p.mu.Lock()
	ready := p.ready
	p.ready = nil
	p.mu.Unlock()
	for _, inst := range ready {
		inst.Destroy(ctx)
	}
	p.s.metrics.setPool(0)
}

// PoolReady returns how many sandboxes the warm pool holds.
func (s *Service) PoolReady() int {
	s.pool.mu.Lock()
	defer s.pool.mu.Unlock()
	return len(s.pool.ready)
}
