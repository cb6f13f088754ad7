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

// maxEventBytes bounds one NDJSON line of a stream.
const maxEventBytes = 16 << 20

// openStream sends a request whose answer is an NDJSON stream of events.
// needExit says that the stream must end with an exit event (executions);
// without one the end of the answer is taken as the end of the stream
// (logs of a running process).
func (c *Client) openStream(ctx context.Context, method, p string, q url.Values, in any, needExit bool) (cove.Stream, error) {
	if in == nil {
		return c.openStreamWith(ctx, method, p, q, nil, "", needExit)
	}
	b, err := json.Marshal(in)
	if err != nil {
		return nil, cove.Errorf(cove.CodeInvalid, "encoding the request: %w", err)
	}
	return c.openStreamWith(ctx, method, p, q, bytes.NewReader(b), "application/json", needExit)
}

// openStreamWith sends body, of media type ctype, for an NDJSON answer.
func (c *Client) openStreamWith(ctx context.Context, method, p string, q url.Values, body io.Reader, ctype string, needExit bool) (cove.Stream, error) {
	rctx, cancel := context.WithCancel(ctx)
	req, err := c.request(rctx, method, p, q, body)
	if err != nil {
		cancel()
		return nil, err
	}
	req.Header.Set("Accept", "application/x-ndjson")
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.send(req)
	if err != nil {
		cancel()
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		return nil, err
	}
	return &stream{ctx: ctx, cancel: cancel, resp: resp, rd: bufio.NewReaderSize(resp.Body, 64<<10), needExit: needExit}, nil
}

// stream is a cove.Stream read from an NDJSON answer.
type stream struct {
	ctx      context.Context // the caller's
	cancel   context.CancelFunc
	resp     *http.Response
	rd       *bufio.Reader
	needExit bool

	mu     sync.Mutex // serialises Next
	done   bool       // the stream has ended (exit, error or end of answer)
	closed atomic.Bool
	once   sync.Once
}

// Next returns the next event; io.EOF after the exit event (or the end of
// a log stream), ctx.Err() once the caller's context is cancelled, and
// ErrStreamClosed after Close.
func (s *stream) Next() (cove.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if s.closed.Load() {
			return cove.Event{}, ErrStreamClosed
		}
		if err := s.ctx.Err(); err != nil {
			return cove.Event{}, err
		}
		if s.done {
			return cove.Event{}, io.EOF
		}
		line, err := readLine(s.rd)
		if err != nil {
			return cove.Event{}, s.readError(err)
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		var w wire.Event
		if err := json.Unmarshal(line, &w); err != nil {
			s.done = true
			return cove.Event{}, cove.Errorf(cove.CodeUnavailable, "malformed event from the server: %v", err)
		}
		ev, err := w.Cove()
		if err != nil {
			s.done = true
			return cove.Event{}, err
		}
		if ev.Type == cove.EventExit {
			s.done = true
		}
		return ev, nil
	}
}

// readError explains why reading the stream failed.
func (s *stream) readError(err error) error {
	switch {
	case s.closed.Load():
		return ErrStreamClosed
	case s.ctx.Err() != nil:
		return s.ctx.Err()
	case errors.Is(err, io.EOF):
		s.done = true
		if s.needExit {
			return cove.Errorf(cove.CodeUnavailable, "the stream ended before the program's result")
		}
		return io.EOF
	}
	s.done = true
	return &cove.Error{Code: cove.CodeUnavailable, Message: "reading the stream from the server", Err: err}
}

// closeWait bounds how long Close waits for the end of an answer whose
// last event has come.
const closeWait = 5 * time.Second

// Close aborts the request, and with it the execution if it still runs.
// After the exit event it instead reads the answer to its end, so that
// the server has finished with the execution (for Run, destroyed its
// sandbox) when Close returns.
func (s *stream) Close() error {
	s.once.Do(func() {
		s.closed.Store(true)
		if s.finished() {
			t := time.AfterFunc(closeWait, s.cancel)
			io.Copy(io.Discard, io.LimitReader(s.resp.Body, maxEventBytes))
			t.Stop()
		}
		s.cancel()
		s.resp.Body.Close()
	})
	return nil
}

// finished reports whether the stream has ended, without waiting for a
// Next in progress.
func (s *stream) finished() bool {
	if !s.mu.TryLock() {
		return false
	}
	defer s.mu.Unlock()
	return s.done
}

// readLine reads one line, refusing lines longer than maxEventBytes.
func readLine(rd *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := rd.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > maxEventBytes {
			return nil, cove.Errorf(cove.CodeUnavailable, "an event of the stream is larger than %d bytes", maxEventBytes)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil && len(line) > 0 && errors.Is(err, io.EOF) {
			return nil, io.ErrUnexpectedEOF
		}
		return line, err
	}
}
