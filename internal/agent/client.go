package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/cove-sandbox/cove"
)

// Client is the host's side of the agent protocol.
type Client struct {
	sess *yamux.Session
}

// SendConfig sends the first boot message to a freshly started agent on
// sock, so that it can build its file system while the host creates the
// sandbox's resources.
func SendConfig(sock *os.File, cfg *BootConfig) error {
	if err := sendFrame(sock, cfg, nil); err != nil {
		return fmt.Errorf("sending boot config: %w", err)
	}
	return nil
}

// Boot sends the second boot message, with the workspace and /etc mounts
// and the delegated cgroup directories, waits for the agent to report that the
// sandbox is isolated, and returns a client for it. A layer that failed is
// reported as an unavailable error that names it.
func Boot(ctx context.Context, sock *os.File, workspace, etc *os.File, cgroupFiles []*os.File) (*Client, *BootReply, error) {
	files := append([]*os.File{workspace, etc}, cgroupFiles...)
	if err := sendFrame(sock, &BootResources{CgroupFiles: len(cgroupFiles)}, files); err != nil {
		return nil, nil, fmt.Errorf("sending boot resources: %w", err)
	}
	conn, err := net.FileConn(sock)
	if err != nil {
		return nil, nil, fmt.Errorf("agent connection: %w", err)
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	typ, payload, err := readFrame(conn)
	if err != nil {
		conn.Close()
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		return nil, nil, fmt.Errorf("agent exited during setup: %w", err)
	}
	var reply BootReply
	if typ != frameResult || unmarshalBinary(payload, &reply) != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("agent sent a malformed boot reply")
	}
	if !reply.OK {
		conn.Close()
		return nil, &reply, cove.Errorf(cove.CodeUnavailable, "sandbox isolation failed at %s: %s", reply.Layer, reply.Error)
	}
	conn.SetDeadline(time.Time{})
	sess, err := yamux.Client(conn, yamuxConfig())
	if err != nil {
		conn.Close()
		return nil, &reply, err
	}
	return &Client{sess: sess}, &reply, nil
}

// Close ends the session; the agent exits when it notices.
func (c *Client) Close() error { return c.sess.Close() }

// Done is closed when the connection to the agent is gone.
func (c *Client) Done() <-chan struct{} { return c.sess.CloseChan() }

func (c *Client) open(ctx context.Context, req *Request) (*yamux.Stream, error) {
	payload, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	return c.openWith(frameRequest, payload)
}

// openWith opens a stream whose first frame is typ with payload.
func (c *Client) openWith(typ byte, payload []byte) (*yamux.Stream, error) {
	st, err := c.sess.OpenStream()
	if err != nil {
		return nil, agentGone(err)
	}
	if err := writeFrame(st, typ, payload); err != nil {
		st.Close()
		return nil, agentGone(err)
	}
	return st, nil
}

// abandon ends st at once, for a caller that no longer waits for it.
// Closing a yamux stream only half-closes it: a read still waits for the
// agent's answer, or for the stream's close timeout (seconds).
func abandon(st *yamux.Stream) {
	st.Close()
	st.SetDeadline(time.Now())
}

// call sends a request and waits for its single result frame.
func (c *Client) call(ctx context.Context, req *Request) ([]byte, error) {
	st, err := c.open(ctx, req)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	stop := context.AfterFunc(ctx, func() { abandon(st) })
	defer stop()
	typ, payload, err := readFrame(st)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, agentGone(err)
	}
	return payload, frameErr(typ, payload)
}

// ReasonOf is the reason of a failure of the agent's of code: its only
// quota is the workspace's disk.
func ReasonOf(code cove.Code) cove.Reason {
	if code == cove.CodeQuotaExceeded {
		return cove.ReasonDiskFull
	}
	return ""
}

func frameErr(typ byte, payload []byte) error {
	switch typ {
	case frameResult:
		return nil
	case frameError:
		var we wireError
		if err := json.Unmarshal(payload, &we); err != nil {
			return cove.Errorf(cove.CodeInternal, "malformed agent error")
		}
		return &cove.Error{Code: cove.Code(we.Code), Message: we.Message, Reason: ReasonOf(cove.Code(we.Code))}
	}
	return cove.Errorf(cove.CodeInternal, "unexpected agent frame %q", typ)
}

// agentGone is the error for a connection to the agent that failed. When
// the agent is gone its streams end with io.EOF, which must not pass for the
// normal end of a stream: the error keeps the reason's text but does not
// wrap it.
func agentGone(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return cove.Errorf(cove.CodeUnavailable, "the sandbox's agent is gone (its connection closed)")
	}
	return cove.Errorf(cove.CodeUnavailable, "the sandbox's agent is gone: %w", err)
}

// Ping round-trips an empty request.
func (c *Client) Ping(ctx context.Context) error {
	_, err := c.call(ctx, &Request{Ping: true})
	return err
}

// Reset returns the sandbox to the state it booted in (see ResetResult),
// or fails with CodeConflict when it cannot vouch for that; the sandbox
// should then be destroyed.
func (c *Client) Reset(ctx context.Context) (*ResetResult, error) {
	b, err := c.call(ctx, &Request{Reset: true})
	if err != nil {
		return nil, err
	}
	var r ResetResult
	return &r, json.Unmarshal(b, &r)
}

// WriteFiles writes files into the workspace as the sandbox user.
func (c *Client) WriteFiles(ctx context.Context, files []File) error {
	_, err := c.call(ctx, &Request{WriteFiles: files})
	return err
}

// ReadFile reads a workspace file.
func (c *Client) ReadFile(ctx context.Context, path string) ([]byte, error) {
	return c.call(ctx, &Request{ReadFile: path})
}

// Stats reads the sandbox's resource use.
func (c *Client) Stats(ctx context.Context) (*Stats, error) {
	b, err := c.call(ctx, &Request{Stats: true})
	if err != nil {
		return nil, err
	}
	var s Stats
	return &s, json.Unmarshal(b, &s)
}

// Output is one item of a running execution: a chunk of stdout (Stream 1)
// or stderr (Stream 2), or, last, the result.
type Output struct {
	Stream int
	Data   []byte
	Result *ExecResult
}

// Exec is a running execution.
type Exec struct {
	st     *yamux.Stream
	ctx    context.Context
	stop   func() bool
	wmu    sync.Mutex
	closed bool
	done   bool
	// c, for an execution (not a process's logs), reaches it from a
	// stream of its own (SignalExec); resulted is set once its result
	// has arrived.
	c        *Client
	resulted atomic.Bool
}

// Start starts an execution. If stdin is non-nil (and spec.Stdin is set) it
// is copied to the program until EOF. Cancelling ctx kills the program.
func (c *Client) Start(ctx context.Context, spec *ExecSpec, stdin io.Reader) (*Exec, error) {
	spec.Stdin = stdin != nil
	st, err := c.openWith(frameExec, marshalBinary(spec))
	if err != nil {
		return nil, err
	}
	e := &Exec{st: st, ctx: ctx, c: c}
	e.stop = context.AfterFunc(ctx, func() {
		st.Close()
		e.cancelRunning()
	})
	if stdin != nil {
		go e.copyStdin(stdin)
	}
	return e, nil
}

func (e *Exec) copyStdin(r io.Reader) {
	buf := make([]byte, chunkSize)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if e.send(frameStdin, buf[:n]) != nil {
				return
			}
		}
		if err != nil {
			e.send(frameStdinEOF, nil)
			return
		}
	}
}

func (e *Exec) send(typ byte, b []byte) error {
	e.wmu.Lock()
	defer e.wmu.Unlock()
	if e.closed {
		return io.ErrClosedPipe
	}
	return writeFrame(e.st, typ, b)
}

// Signal sends a signal to the program's process group. It goes on a
// stream of its own: the execution's carries its standard input, which a
// program that does not read it holds up, and a signal behind it would
// wait as long (a stop, until the execution's timeout).
func (e *Exec) Signal(sig int) error {
	if e.c == nil {
		return cove.Errorf(cove.CodeInvalid, "only an execution takes signals, not the logs of a process")
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(e.ctx), signalTimeout)
	defer cancel()
	_, err := e.c.call(ctx, &Request{SignalExec: &SignalExecSpec{Stream: e.st.StreamID(), Signal: sig}})
	return err
}

// signalTimeout bounds a signal's request to the agent.
const signalTimeout = 10 * time.Second

// cancelRunning kills an execution whose result has not arrived as given
// up by its caller, on a stream of its own (see Signal): the agent also
// sees the execution's stream close, unless standard input the program
// does not read holds it up.
func (e *Exec) cancelRunning() {
	if e.c == nil || e.resulted.Load() {
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(e.ctx), signalTimeout)
		defer cancel()
		e.c.call(ctx, &Request{SignalExec: &SignalExecSpec{Stream: e.st.StreamID(), Cancel: true}})
	}()
}

// Next returns the next output. After the result it returns io.EOF; after
// cancellation, the context's error.
func (e *Exec) Next() (Output, error) {
	if e.done {
		return Output{}, io.EOF
	}
	typ, payload, err := readFrame(e.st)
	if err != nil {
		if e.ctx.Err() != nil {
			return Output{}, e.ctx.Err()
		}
		return Output{}, agentGone(err)
	}
	switch typ {
	case frameStdout:
		return Output{Stream: 1, Data: payload}, nil
	case frameStderr:
		return Output{Stream: 2, Data: payload}, nil
	case frameExecResult:
		var r ExecResult
		if err := unmarshalBinary(payload, &r); err != nil {
			return Output{}, cove.Errorf(cove.CodeInternal, "malformed execution result")
		}
		e.done = true
		e.resulted.Store(true)
		return Output{Result: &r}, nil
	case frameResult:
		var r resultFrame
		if err := json.Unmarshal(payload, &r); err != nil {
			return Output{}, cove.Errorf(cove.CodeInternal, "malformed execution result")
		}
		e.done = true
		if r.Running {
			// The logs of a background process that has not exited.
			return Output{}, io.EOF
		}
		return Output{Result: &r.ExecResult}, nil
	}
	if err := frameErr(typ, payload); err != nil {
		return Output{}, err
	}
	return Output{}, errors.New("unexpected frame")
}

// Close releases the execution; if it is still running it is killed.
func (e *Exec) Close() error {
	e.stop()
	// The stream first: a copy of standard input that waits for room
	// on it holds wmu until the stream closes.
	err := e.st.Close()
	e.wmu.Lock()
	e.closed = true
	e.wmu.Unlock()
	e.cancelRunning()
	return err
}
