package ai

import (
	"context"
	"io"
	"sync"

	"github.com/cove-sandbox/cove"
)

// stream is the cove.AIStream of an analysis: a goroutine produces the
// events, Next hands them out in order.
type stream struct {
	ctx    context.Context // the caller's
	cancel context.CancelFunc
	events chan cove.AIEvent
	done   chan struct{} // closed when the producer has returned
	err    error         // the producer's failure, read after done

	mu     sync.Mutex // serialises Next
	ended  bool
	closed bool
	once   sync.Once
}

// newStream starts produce in a goroutine. ctx is the caller's; pctx,
// derived from it, is the producer's, and Close cancels it. produce sends
// events with emit, which reports false once nobody will read them; its
// error ends the stream after the events.
func newStream(ctx, pctx context.Context, cancel context.CancelFunc, produce func(emit func(cove.AIEvent) bool) error) *stream {
	s := &stream{ctx: ctx, cancel: cancel, events: make(chan cove.AIEvent, 64), done: make(chan struct{})}
	emit := func(ev cove.AIEvent) bool {
		select {
		case s.events <- ev:
			return true
		case <-pctx.Done():
			return false
		}
	}
	go func() {
		defer close(s.done)
		defer close(s.events)
		s.err = produce(emit)
	}()
	return s
}

// errStreamClosed is what Next returns after Close.
var errStreamClosed = cove.Errorf(cove.CodeInvalid, "the analysis stream is closed")

// Next returns the next event: io.EOF after the result, the analysis's
// error if it failed, ctx.Err() once the caller's context is cancelled.
func (s *stream) Next() (cove.AIEvent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return cove.AIEvent{}, errStreamClosed
	}
	if err := s.ctx.Err(); err != nil {
		return cove.AIEvent{}, err
	}
	if s.ended {
		return cove.AIEvent{}, io.EOF
	}
	select {
	case ev, ok := <-s.events:
		if ok {
			return ev, nil
		}
	case <-s.ctx.Done():
		return cove.AIEvent{}, s.ctx.Err()
	}
	<-s.done
	s.ended = true
	if err := s.ctx.Err(); err != nil {
		return cove.AIEvent{}, err
	}
	if s.err != nil {
		return cove.AIEvent{}, s.err
	}
	return cove.AIEvent{}, io.EOF
}

// Close stops the analysis and waits until it has cleaned up (deleted the
// sandbox a fix loop created).
func (s *stream) Close() error {
	s.once.Do(func() {
		s.cancel()
		<-s.done
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
	})
	return nil
}
