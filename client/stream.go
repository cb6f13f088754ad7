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
	"syscall"
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
	var body io.Reader
	ctype := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return nil, cove.Errorf(cove.CodeInvalid, "encoding the request: %w", err)
		}
		body, ctype = bytes.NewReader(b), "application/json"
	}
	st, err := c.openStreamWith(ctx, method, p, q, body, ctype, needExit)
	if err != nil {
		return nil, err
	}
	return st, nil
}

// openStreamWith sends body, of media type ctype, for an NDJSON answer.
func (c *Client) openStreamWith(ctx context.Context, method, p string, q url.Values, body io.Reader, ctype string, needExit bool) (*ndjson[cove.Event], error) {
	resp, cancel, err := c.sendForNDJSON(ctx, method, p, q, body, ctype)
	if err != nil {
		return nil, err
	}
	cutShort := ""
	if needExit {
		cutShort = "the stream ended before the program's result"
	}
	return newNDJSON(ctx, cancel, resp, cutShort, decodeEvent), nil
}

// sendForNDJSON sends a request that asks for an NDJSON answer, and
// returns the answer once its status is known, with what cancels it.
func (c *Client) sendForNDJSON(ctx context.Context, method, p string, q url.Values, body io.Reader, ctype string) (*http.Response, context.CancelFunc, error) {
	rctx, cancel := context.WithCancel(ctx)
	req, err := c.request(rctx, method, p, q, body)
	if err != nil {
		cancel()
		return nil, nil, err
	}
	req.Header.Set("Accept", "application/x-ndjson")
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.send(req)
	if err != nil {
		cancel()
		if cerr := ctx.Err(); cerr != nil {
			return nil, nil, cerr
		}
		return nil, nil, err
	}
	return resp, cancel, nil
}

// ndjson is a stream of events of type E read from an NDJSON answer:
// cove.Stream (E = cove.Event) and cove.AIStream (E = cove.AIEvent).
type ndjson[E any] struct {
	ctx    context.Context // the caller's
	cancel context.CancelFunc
	resp   *http.Response
	rd     *bufio.Reader
	// decode turns a line into an event, and says whether it is the
	// last one (an exit, a result). An error event of the server becomes
	// its error.
	decode func(line []byte) (ev E, last bool, err error)
	// cutShort, when set, is the error for an answer that ends before its
	// last event; without it the end of the answer ends the stream (the
	// logs of a running process).
	cutShort string

	mu     sync.Mutex // serialises Next
	done   bool       // the stream has ended (last event, error or end of answer)
	closed atomic.Bool
	once   sync.Once

	// The answer is released (its rest read, or its request aborted)
	// once the stream has ended, whether or not the caller closes the
	// stream: a stream read to its end holds no connection.
	releaseOnce sync.Once
	released    chan struct{} // closed once the answer is released
	// onRelease, if set, is called when the answer is released (stops
	// the copy of a streamed standard input).
	onRelease func()
}

// newNDJSON reads resp's body as a stream of events.
func newNDJSON[E any](ctx context.Context, cancel context.CancelFunc, resp *http.Response, cutShort string, decode func([]byte) (E, bool, error)) *ndjson[E] {
	return &ndjson[E]{ctx: ctx, cancel: cancel, resp: resp, rd: bufio.NewReaderSize(resp.Body, 64<<10), decode: decode, cutShort: cutShort, released: make(chan struct{})}
}

// ExecutionID returns the id of the execution the stream delivers, which
// StopExecution takes (the answer's Cove-Execution-Id header), or "".
func (s *ndjson[E]) ExecutionID() string { return s.resp.Header.Get("Cove-Execution-Id") }

// decodeEvent decodes an execution's event.
func decodeEvent(line []byte) (cove.Event, bool, error) {
	var w wire.Event
	if err := json.Unmarshal(line, &w); err != nil {
		return cove.Event{}, true, cove.Errorf(cove.CodeUnavailable, "malformed event from the server: %v", err)
	}
	ev, err := w.Cove()
	return ev, err != nil || ev.Type == cove.EventExit, err
}

// Next returns the next event; io.EOF after the last event (or the end of
// a log stream), whatever becomes of ctx then; ctx.Err() once the
// caller's context is cancelled before; and ErrStreamClosed after Close.
// Once the stream has ended (last event, io.EOF or an error that ends
// it), its answer is released without Close; the io.EOF after the last
// event comes once the server has ended its answer.
func (s *ndjson[E]) Next() (E, error) {
	var zero E
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		if s.closed.Load() {
			return zero, ErrStreamClosed
		}
		if s.done {
			<-s.released
			return zero, io.EOF
		}
		if err := s.ctx.Err(); err != nil {
			s.release(false)
			return zero, err
		}
		line, err := readLine(s.rd)
		if err != nil {
			return zero, s.readError(err)
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		ev, last, err := s.decode(line)
		if last {
			s.done = true
			s.release(true)
		}
		if err != nil {
			return zero, err
		}
		return ev, nil
	}
}

// readError explains why reading the stream failed, and releases the
// answer unless Close is doing it.
func (s *ndjson[E]) readError(err error) error {
	switch {
	case s.closed.Load():
		return ErrStreamClosed
	case s.ctx.Err() != nil:
		s.release(false)
		return s.ctx.Err()
	case errors.Is(err, io.EOF):
		s.done = true
		s.release(false)
		if s.cutShort != "" {
			return cove.Errorf(cove.CodeUnavailable, "%s", s.cutShort)
		}
		return io.EOF
	}
	s.done = true
	s.release(false)
	return &cove.Error{Code: cove.CodeUnavailable, Message: "reading the stream from the server: " + streamCause(err), Err: err}
}

// streamCause says, for the message, why reading an answer failed: the
// caller sees only the message, and "reading the stream" alone does not
// tell a server that went away from a broken network.
func streamCause(err error) string {
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) {
		return "the server closed the connection before the end of the answer (did it stop or crash?)"
	}
	return cove.ErrorMessage(err)
}

// closeWait bounds how long the end of an answer whose last event has
// come is waited for.
const closeWait = 5 * time.Second

// release lets go of the answer, once: after the last event (drain) it
// reads the rest of the answer in the background, for at most closeWait,
// so that its connection serves again; otherwise, and for an answer that
// closes its connection (a streamed standard input's, whose server may
// be waiting, before it ends the answer, for this side to stop sending),
// it aborts the request.
func (s *ndjson[E]) release(drain bool) {
	s.releaseOnce.Do(func() {
		if s.onRelease != nil {
			s.onRelease()
		}
		if !drain || s.resp.Close {
			s.cancel()
			s.resp.Body.Close()
			close(s.released)
			return
		}
		go func() {
			defer close(s.released)
			t := time.AfterFunc(closeWait, s.cancel)
			io.Copy(io.Discard, io.LimitReader(s.resp.Body, maxEventBytes))
			t.Stop()
			s.cancel()
			s.resp.Body.Close()
		}()
	})
}

// Close aborts the request, and with it what the server was doing for
// it (an execution, an analysis) if it still runs. After the last event
// it instead waits for the end of the answer, so that the server has
// finished (for Run, destroyed its sandbox) when Close returns. Close
// may be called more than once, and after the stream ended by itself.
func (s *ndjson[E]) Close() error {
	s.once.Do(func() {
		s.closed.Store(true)
		if !s.finished() {
			// Cancelling first unblocks a read in progress, which
			// Close of the body would otherwise wait for.
			s.cancel()
			s.resp.Body.Close()
		}
		s.release(false)
		<-s.released
	})
	return nil
}

// finished reports whether the stream has ended, without waiting for a
// Next in progress.
func (s *ndjson[E]) finished() bool {
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
