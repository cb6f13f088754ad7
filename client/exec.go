package client

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/wire"
)

// Exec implements cove.Service (POST /v1/sandboxes/{id}/exec, streamed as
// NDJSON). A StdinReader streams to the program as the program runs: the
// request's body is the JSON request on one line followed by the reader's
// bytes (?stdin=stream). The end of the reader is the end of the
// program's standard input; an error reading it, like cancelling ctx or
// closing the stream, breaks off the execution. The reader is not
// closed.
//
// Reading the StdinReader goes on in the background while the program
// runs, and a Read in progress when the execution ends cannot be
// interrupted: the bytes it returns then are lost, and the caller must
// not read the same reader until it has returned. So give a reader that
// ends, or that the caller can unblock: an io.Pipe whose writer the
// caller closes, or an *os.File that supports deadlines (a pipe, a
// socket; not a terminal or regular file), whose Read this client
// interrupts with a deadline once the stream has ended (and then clears
// the deadline again). Do not give os.Stdin of a terminal to one
// execution and then read it for the next: the line typed between may
// go to the first one's reader; copy it into an io.Pipe instead, and
// hand each execution its own pipe.
func (c *Client) Exec(ctx context.Context, id string, req cove.ExecRequest) (cove.Stream, error) {
	if req.StdinReader != nil {
		r := req.StdinReader
		req.StdinReader, req.Stdin = nil, nil
		return c.openStdinStream(ctx, sandboxPath(id, "/exec"), wire.ExecRequestFrom(req), r)
	}
	return c.openStream(ctx, http.MethodPost, sandboxPath(id, "/exec"), nil, wire.ExecRequestFrom(req), true)
}

// RunCode implements cove.Service (POST /v1/sandboxes/{id}/code, streamed
// as NDJSON). A StdinReader streams as for Exec.
func (c *Client) RunCode(ctx context.Context, id string, req cove.CodeRequest) (cove.Stream, error) {
	if req.StdinReader != nil {
		r := req.StdinReader
		req.StdinReader, req.Stdin = nil, nil
		return c.openStdinStream(ctx, sandboxPath(id, "/code"), wire.CodeRequestFrom(req), r)
	}
	return c.openStream(ctx, http.MethodPost, sandboxPath(id, "/code"), nil, wire.CodeRequestFrom(req), true)
}

// Run implements cove.Service (POST /v1/run, streamed as NDJSON). The
// server destroys the sandbox (or resets it for the same key's next run)
// when the stream ends or is closed. A
// StdinReader streams as for Exec.
func (c *Client) Run(ctx context.Context, req cove.RunRequest) (cove.Stream, error) {
	if req.StdinReader != nil {
		r := req.StdinReader
		req.StdinReader, req.Stdin = nil, nil
		return c.openStdinStream(ctx, "/v1/run", wire.RunRequestFrom(req), r)
	}
	return c.openStream(ctx, http.MethodPost, "/v1/run", nil, wire.RunRequestFrom(req), true)
}

// StopExecution implements cove.Service (POST
// /v1/executions/{execID}/stop).
func (c *Client) StopExecution(ctx context.Context, execID string) error {
	return c.call(ctx, http.MethodPost, "/v1/executions/"+url.PathEscape(execID)+"/stop", nil, nil, nil)
}

// openStdinStream starts an execution whose standard input streams
// (?stdin=stream): the body is the JSON request on one line, then stdin
// copied from r as it comes, while the events are read. The end of r is
// the end of the program's standard input; an error reading r, like
// cancelling ctx or closing the stream, breaks off the request and with
// it the execution. r is not closed. Once the stream has ended the copy
// stops at its next write, and a Read of r in progress is cut short if r
// supports read deadlines.
func (c *Client) openStdinStream(ctx context.Context, p string, in any, r io.Reader) (cove.Stream, error) {
	line, err := json.Marshal(in)
	if err != nil {
		return nil, cove.Errorf(cove.CodeInvalid, "encoding the request: %w", err)
	}
	line = append(line, '\n')
	pr, pw := io.Pipe()
	cp := &stdinCopy{r: r, done: make(chan struct{})}
	go func() {
		_, err := pw.Write(line)
		if err == nil {
			_, err = io.Copy(pw, r)
		}
		pw.CloseWithError(err)
		cp.finish()
	}()
	st, err := c.openStreamWith(ctx, http.MethodPost, p, url.Values{"stdin": {"stream"}}, pr, "application/x-cove-exec-stream", true)
	if err != nil {
		// Stop the copy at its next write.
		pr.CloseWithError(err)
		cp.stop()
		return nil, err
	}
	st.onRelease = func() {
		pr.CloseWithError(ErrStreamClosed)
		cp.stop()
	}
	return st, nil
}

// readDeadliner is a reader whose Read a deadline interrupts, such as an
// *os.File of a pipe.
type readDeadliner interface {
	SetReadDeadline(t time.Time) error
}

// stdinCopy stops the copy of a caller's standard input reader when its
// execution's stream has ended, as far as the reader allows: a reader
// with read deadlines gets one in the past, which is cleared again once
// the copy has stopped, so that the caller can read it on.
type stdinCopy struct {
	r           io.Reader
	done        chan struct{} // closed when the copy has returned
	mu          sync.Mutex
	stopped     bool // the stream has ended
	finished    bool // the copy has returned
	interrupted bool // a deadline was set to interrupt the copy
}

// stdinStopWait bounds how long stop waits for a Read that its deadline
// should have interrupted.
const stdinStopWait = time.Second

// stop interrupts a Read of the copy in progress, if the reader allows,
// and then waits for the copy to return, so that the reader is the
// caller's again when the stream's last Next or Close returns.
func (c *stdinCopy) stop() {
	c.mu.Lock()
	if c.stopped || c.finished {
		c.stopped = true
		c.mu.Unlock()
		return
	}
	c.stopped = true
	if d, ok := c.r.(readDeadliner); ok && d.SetReadDeadline(time.Now()) == nil {
		c.interrupted = true
	}
	interrupted := c.interrupted
	c.mu.Unlock()
	if interrupted {
		t := time.NewTimer(stdinStopWait)
		defer t.Stop()
		select {
		case <-c.done:
		case <-t.C:
		}
	}
}

// finish notes the end of the copy, and clears the deadline stop set.
func (c *stdinCopy) finish() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.finished = true
	if c.interrupted {
		c.r.(readDeadliner).SetReadDeadline(time.Time{})
	}
	close(c.done)
}
