package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/wire"
)

// Analyze implements cove.Service (POST /v1/ai/{action}, streamed as
// NDJSON): text chunks as Claude writes them, the fix loop's steps as
// they run, and the result last.
func (c *Client) Analyze(ctx context.Context, req cove.AIRequest) (cove.AIStream, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(wire.AIRequestFrom(req))
	if err != nil {
		return nil, cove.Errorf(cove.CodeInvalid, "encoding the request: %w", err)
	}
	rctx, cancel := context.WithCancel(ctx)
	hr, err := c.request(rctx, http.MethodPost, "/v1/ai/"+url.PathEscape(string(req.Action)), nil, bytes.NewReader(b))
	if err != nil {
		cancel()
		return nil, err
	}
	hr.Header.Set("Accept", "application/x-ndjson")
	hr.Header.Set("Content-Type", "application/json")
	resp, err := c.send(hr)
	if err != nil {
		cancel()
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		return nil, err
	}
	return &aiStream{ctx: ctx, cancel: cancel, resp: resp, rd: bufio.NewReaderSize(resp.Body, 64<<10)}, nil
}

// aiStream is a cove.AIStream read from an NDJSON answer.
type aiStream struct {
	ctx    context.Context
	cancel context.CancelFunc
	resp   *http.Response
	rd     *bufio.Reader

	mu     sync.Mutex
	done   bool
	closed atomic.Bool
	once   sync.Once
}

// Next returns the next event: io.EOF after the result, ctx.Err() once
// the caller's context is cancelled, ErrStreamClosed after Close, and the
// analysis's error when it failed after it began.
func (s *aiStream) Next() (cove.AIEvent, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if s.closed.Load() {
			return cove.AIEvent{}, ErrStreamClosed
		}
		if err := s.ctx.Err(); err != nil {
			return cove.AIEvent{}, err
		}
		if s.done {
			return cove.AIEvent{}, io.EOF
		}
		line, err := readLine(s.rd)
		if err != nil {
			s.done = true
			switch {
			case s.closed.Load():
				return cove.AIEvent{}, ErrStreamClosed
			case s.ctx.Err() != nil:
				return cove.AIEvent{}, s.ctx.Err()
			case errors.Is(err, io.EOF):
				return cove.AIEvent{}, cove.Errorf(cove.CodeUnavailable, "the analysis ended before its result")
			}
			return cove.AIEvent{}, &cove.Error{Code: cove.CodeUnavailable, Message: "reading the analysis from the server", Err: err}
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		var w wire.AIEvent
		if err := json.Unmarshal(line, &w); err != nil {
			s.done = true
			return cove.AIEvent{}, cove.Errorf(cove.CodeUnavailable, "malformed event from the server: %v", err)
		}
		ev, err := w.Cove()
		if err != nil {
			s.done = true
			return cove.AIEvent{}, err
		}
		if ev.Type == cove.AIEventResult {
			s.done = true
		}
		return ev, nil
	}
}

// Close stops the analysis (the server cancels it when the request
// ends). After the result it instead reads the answer to its end, so
// that the server has finished (deleted the fix loop's sandbox) when
// Close returns.
func (s *aiStream) Close() error {
	s.once.Do(func() {
		finished := false
		if s.mu.TryLock() {
			finished = s.done
			s.mu.Unlock()
		}
		s.closed.Store(true)
		if finished {
			t := time.AfterFunc(closeWait, s.cancel)
			io.Copy(io.Discard, io.LimitReader(s.resp.Body, maxEventBytes))
			t.Stop()
		}
		s.cancel()
		s.resp.Body.Close()
	})
	return nil
}
