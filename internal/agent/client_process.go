package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/cove-sandbox/cove"
)

// Messages of background processes and terminals. For each background
// process the agent keeps the last 1 MiB of stdout and of stderr, in the
// order they arrived, and it keeps the 100 most recently exited processes
// (process_linux.go has the exact bounds).

// SpawnSpec starts a background process (Request.Spawn).
type SpawnSpec struct {
	// Exec is the program, run as an execution is. Its Stdin and
	// OutputLimit are ignored: standard input is a pipe that stays open
	// for WriteStdin, and output is kept in ring buffers instead of being
	// limited.
	Exec ExecSpec `json:"exec"`
	// Name labels the process in listings.
	Name string `json:"name,omitempty"`
}

// LogsSpec asks for a background process's output (Request.ProcessLogs).
type LogsSpec struct {
	PID    int  `json:"pid"`
	Follow bool `json:"follow,omitempty"`
	// ResultOnly asks for no output at all, to wait for the process:
	// after the acknowledgement the agent sends nothing until the process
	// has exited, then a result frame with its ProcessInfo (Result set).
	// Follow is implied.
	ResultOnly bool `json:"result_only,omitempty"`
}

// StdinSpec writes to a background process's standard input
// (Request.ProcessStdin).
type StdinSpec struct {
	PID  int    `json:"pid"`
	Data []byte `json:"data,omitempty"`
	// EOF closes standard input after Data.
	EOF bool `json:"eof,omitempty"`
}

// SignalSpec sends a signal to a background process's process group
// (Request.SignalProcess).
type SignalSpec struct {
	PID    int `json:"pid"`
	Signal int `json:"signal"`
}

// SignalExecSpec signals the execution that runs on stream Stream
// (Request.SignalExec): Signal to its process group or, with Cancel, kills
// it as given up by its caller.
type SignalExecSpec struct {
	Stream uint32 `json:"stream"`
	Signal int    `json:"signal,omitempty"`
	Cancel bool   `json:"cancel,omitempty"`
}

// PTYSpec starts a program on a pseudo-terminal (Request.OpenPTY).
type PTYSpec struct {
	// Argv defaults to a login shell: bash -l, or /bin/sh -l without bash.
	Argv []string `json:"argv,omitempty"`
	// Env is the complete environment; TERM defaults to xterm-256color.
	Env []string `json:"env,omitempty"`
	// Dir defaults to /workspace.
	Dir string `json:"dir,omitempty"`
	// Cols and Rows are the initial size (default 80x24).
	Cols int `json:"cols,omitempty"`
	Rows int `json:"rows,omitempty"`
}

// ProcessInfo describes a background process.
type ProcessInfo struct {
	// PID is the process's id inside the sandbox.
	PID       int       `json:"pid"`
	Name      string    `json:"name,omitempty"`
	Argv      []string  `json:"argv"`
	Running   bool      `json:"running"`
	StartedAt time.Time `json:"started_at"`
	// Result is set once the process has exited.
	Result *ExecResult `json:"result,omitempty"`
}

// termSize is the payload of a frameResize.
type termSize struct {
	Cols int `json:"cols"`
	Rows int `json:"rows"`
}

// ptyAck is the payload of the frameAck that starts a terminal stream.
type ptyAck struct {
	PID int `json:"pid"`
}

// resultFrame is the payload of a frameResult on an execution or log
// stream: an ExecResult, or, at the end of the logs of a process that is
// still running, only Running.
type resultFrame struct {
	ExecResult
	Running bool `json:"running,omitempty"`
}

// maxStdinWrite is the most data one ProcessStdin request carries; larger
// writes are split (the data travels base64-encoded in the request).
const maxStdinWrite = 4 << 20

func noProcess(pid int) error {
	return cove.Errorf(cove.CodeNotFound, "no background process with pid %d", pid)
}

// Spawn starts a background process and returns as soon as it runs. Its
// output is kept for Logs. A program that cannot be started is an invalid
// error that says why; a full process table of the sandbox is a conflict.
func (c *Client) Spawn(ctx context.Context, spec *ExecSpec, name string) (*ProcessInfo, error) {
	b, err := c.call(ctx, &Request{Spawn: &SpawnSpec{Exec: *spec, Name: name}})
	if err != nil {
		return nil, err
	}
	var p ProcessInfo
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, cove.Errorf(cove.CodeInternal, "malformed process description: %w", err)
	}
	return &p, nil
}

// Processes lists the background processes, running and recently exited,
// oldest first.
func (c *Client) Processes(ctx context.Context) ([]*ProcessInfo, error) {
	b, err := c.call(ctx, &Request{ListProcesses: true})
	if err != nil {
		return nil, err
	}
	var ps []*ProcessInfo
	if err := json.Unmarshal(b, &ps); err != nil {
		return nil, cove.Errorf(cove.CodeInternal, "malformed process list: %w", err)
	}
	return ps, nil
}

// Process describes one background process. Errors: not_found.
func (c *Client) Process(ctx context.Context, pid int) (*ProcessInfo, error) {
	if pid <= 0 {
		return nil, noProcess(pid)
	}
	b, err := c.call(ctx, &Request{GetProcess: pid})
	if err != nil {
		return nil, err
	}
	var p ProcessInfo
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, cove.Errorf(cove.CodeInternal, "malformed process description: %w", err)
	}
	return &p, nil
}

// Logs streams a background process's output: first what the agent kept
// of it, in the order it was written, then, with follow, new output until
// the process exits. Next yields the output chunks, then the result if the
// process has exited, then io.EOF; without follow, the logs of a process
// still running end with io.EOF and no result. Closing the stream stops
// following; it never affects the process. Errors: not_found.
func (c *Client) Logs(ctx context.Context, pid int, follow bool) (*Exec, error) {
	if pid <= 0 {
		return nil, noProcess(pid)
	}
	st, err := c.open(ctx, &Request{ProcessLogs: &LogsSpec{PID: pid, Follow: follow}})
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { st.Close() })
	if _, err := readAck(ctx, st); err != nil {
		stop()
		st.Close()
		return nil, err
	}
	return &Exec{st: st, ctx: ctx, stop: stop}, nil
}

// Wait waits for a background process to exit, without its output, and
// returns its description with its Result; for a process that has already
// exited it returns at once. Cancelling ctx stops waiting, with the
// context's error; it never affects the process. Errors: not_found.
func (c *Client) Wait(ctx context.Context, pid int) (*ProcessInfo, error) {
	if pid <= 0 {
		return nil, noProcess(pid)
	}
	st, err := c.open(ctx, &Request{ProcessLogs: &LogsSpec{PID: pid, ResultOnly: true}})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	stop := context.AfterFunc(ctx, func() { abandon(st) })
	defer stop()
	if _, err := readAck(ctx, st); err != nil {
		return nil, err
	}
	typ, payload, err := readFrame(st)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, agentGone(err)
	}
	if err := frameErr(typ, payload); err != nil {
		return nil, err
	}
	var p ProcessInfo
	if err := json.Unmarshal(payload, &p); err != nil || p.Running || p.Result == nil {
		return nil, cove.Errorf(cove.CodeInternal, "malformed process result")
	}
	return &p, nil
}

// readAck reads the frame that opens a log or terminal stream: the agent
// accepted the request, or an error.
func readAck(ctx context.Context, st *yamux.Stream) ([]byte, error) {
	typ, payload, err := readFrame(st)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, agentGone(err)
	}
	if typ == frameAck {
		return payload, nil
	}
	if err := frameErr(typ, payload); err != nil {
		return nil, err
	}
	return nil, cove.Errorf(cove.CodeInternal, "unexpected agent frame %q", typ)
}

// WriteStdin writes data to a background process's standard input and,
// with eof, closes it. It returns once the data is in the pipe (the
// process may not have read it yet). Errors: not_found, conflict (the
// process has exited or its standard input is closed).
func (c *Client) WriteStdin(ctx context.Context, pid int, data []byte, eof bool) error {
	if pid <= 0 {
		return noProcess(pid)
	}
	for {
		n := min(len(data), maxStdinWrite)
		last := n == len(data)
		if _, err := c.call(ctx, &Request{ProcessStdin: &StdinSpec{PID: pid, Data: data[:n], EOF: eof && last}}); err != nil {
			return err
		}
		if last {
			return nil
		}
		data = data[n:]
	}
}

// SignalProcess sends signal sig (1 to 64) to a background process's
// process group; SIGKILL kills it. A process that has already exited is
// not signalled: that is a conflict whose message says how it ended.
// Errors: not_found, invalid (bad signal), conflict (exited).
func (c *Client) SignalProcess(ctx context.Context, pid int, sig int) error {
	if sig < 1 || sig > 64 {
		return cove.Errorf(cove.CodeInvalid, "signal %d is out of range (1 to 64)", sig)
	}
	if pid <= 0 {
		return noProcess(pid)
	}
	_, err := c.call(ctx, &Request{SignalProcess: &SignalSpec{PID: pid, Signal: sig}})
	return err
}

// ptyBuffer bounds the terminal output a PTY holds for its reader.
const ptyBuffer = 1 << 20

// PTY is a program running on a pseudo-terminal in the sandbox: Read
// returns what it prints, Write types into it. Read returns io.EOF once
// the program has exited and its output is drained; Wait gives its
// result. Its methods are safe for concurrent use.
type PTY struct {
	st   *yamux.Stream
	ctx  context.Context
	stop func() bool
	pid  int

	wmu     sync.Mutex // orders frames to the agent
	wclosed bool

	mu       sync.Mutex
	cond     *sync.Cond
	buf      []byte // output not read yet, at most ptyBuffer
	waiting  bool   // Wait was called: output nobody reads may be dropped
	closed   bool
	finished bool // no more output will come
	result   *ExecResult
	err      error
}

// OpenPTY starts a program on a new pseudo-terminal in the sandbox, as the
// sandbox user, in a session of its own with the terminal as its
// controlling terminal. It returns once the program runs. Cancelling ctx
// or closing the PTY kills the program and everything it started.
// Errors: invalid (bad size; the program cannot be started, with the
// reason), conflict (the sandbox's process limit is reached).
func (c *Client) OpenPTY(ctx context.Context, spec *PTYSpec) (*PTY, error) {
	if spec.Cols < 0 || spec.Rows < 0 || spec.Cols > maxTermSide || spec.Rows > maxTermSide {
		return nil, cove.Errorf(cove.CodeInvalid, "terminal size %dx%d is out of range (1 to %d)", spec.Cols, spec.Rows, maxTermSide)
	}
	st, err := c.open(ctx, &Request{OpenPTY: spec})
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { st.Close() })
	b, err := readAck(ctx, st)
	var ack ptyAck
	if err == nil && json.Unmarshal(b, &ack) != nil {
		err = cove.Errorf(cove.CodeInternal, "malformed terminal acknowledgement")
	}
	if err != nil {
		stop()
		st.Close()
		return nil, err
	}
	p := &PTY{st: st, ctx: ctx, stop: stop, pid: ack.PID}
	p.cond = sync.NewCond(&p.mu)
	go p.receive()
	return p, nil
}

// maxTermSide bounds a terminal's columns and rows.
const maxTermSide = 10000

// PID returns the program's process id inside the sandbox.
func (p *PTY) PID() int { return p.pid }

// receive moves the agent's frames into the PTY's buffer and result.
func (p *PTY) receive() {
	for {
		typ, payload, err := readFrame(p.st)
		p.mu.Lock()
		if err != nil {
			if p.ctx.Err() != nil {
				p.err = p.ctx.Err()
			} else {
				p.err = agentGone(err)
			}
			p.finish()
			return
		}
		switch typ {
		case frameStdout:
			// A reader that falls behind holds the agent back, unless
			// nobody will read any more.
			for len(p.buf)+len(payload) > ptyBuffer && len(p.buf) > 0 && !p.waiting && !p.closed {
				p.cond.Wait()
			}
			if len(p.buf)+len(payload) <= ptyBuffer && !p.closed {
				p.buf = append(p.buf, payload...)
			}
		case frameResult:
			var r ExecResult
			if err := json.Unmarshal(payload, &r); err != nil {
				p.err = cove.Errorf(cove.CodeInternal, "malformed terminal result")
			} else {
				p.result = &r
			}
			p.finish()
			return
		default:
			p.err = frameErr(typ, payload)
			if p.err == nil {
				p.err = cove.Errorf(cove.CodeInternal, "unexpected agent frame %q", typ)
			}
			p.finish()
			return
		}
		p.cond.Broadcast()
		p.mu.Unlock()
	}
}

// finish marks the end of the stream; p.mu is held and is released.
func (p *PTY) finish() {
	p.finished = true
	p.cond.Broadcast()
	p.mu.Unlock()
	p.stop()
	p.st.Close()
}

// Read reads the program's terminal output. It returns io.EOF once the
// program has exited and everything it printed has been read.
func (p *PTY) Read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.buf) == 0 && !p.finished && !p.closed {
		p.cond.Wait()
	}
	switch {
	case p.closed:
		return 0, os.ErrClosed
	case len(p.buf) > 0:
		n := copy(b, p.buf)
		p.buf = p.buf[n:]
		if len(p.buf) == 0 {
			p.buf = nil
		}
		p.cond.Broadcast()
		return n, nil
	case p.err != nil:
		return 0, p.err
	}
	return 0, io.EOF
}

// Write types b into the terminal.
func (p *PTY) Write(b []byte) (int, error) {
	written := 0
	for len(b) > 0 {
		n := min(len(b), chunkSize)
		if err := p.send(frameStdin, b[:n]); err != nil {
			return written, err
		}
		written += n
		b = b[n:]
	}
	return written, nil
}

// Resize changes the terminal's size; the program gets SIGWINCH.
func (p *PTY) Resize(cols, rows int) error {
	if cols < 1 || rows < 1 || cols > maxTermSide || rows > maxTermSide {
		return cove.Errorf(cove.CodeInvalid, "terminal size %dx%d is out of range (1 to %d)", cols, rows, maxTermSide)
	}
	b, err := json.Marshal(termSize{Cols: cols, Rows: rows})
	if err != nil {
		return err
	}
	return p.send(frameResize, b)
}

func (p *PTY) send(typ byte, b []byte) error {
	p.wmu.Lock()
	defer p.wmu.Unlock()
	if p.wclosed {
		return os.ErrClosed
	}
	if err := writeFrame(p.st, typ, b); err != nil {
		if p.ctx.Err() != nil {
			return p.ctx.Err()
		}
		return cove.Errorf(cove.CodeUnavailable, "the terminal's stream is gone: %w", err)
	}
	return nil
}

// Wait waits for the program to exit and returns its result. Output that
// nobody reads from then on is kept up to 1 MiB, the rest is dropped.
func (p *PTY) Wait() (*ExecResult, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.waiting = true
	p.cond.Broadcast()
	for !p.finished {
		p.cond.Wait()
	}
	if p.result != nil {
		return p.result, nil
	}
	if p.err != nil {
		return nil, p.err
	}
	return nil, fmt.Errorf("terminal stream ended without a result")
}

// Close closes the terminal; if the program is still running it is
// killed, with everything it started. Wait still reports how it ended.
func (p *PTY) Close() error {
	p.wmu.Lock()
	p.wclosed = true
	p.wmu.Unlock()
	p.mu.Lock()
	p.closed = true
	p.buf = nil
	p.cond.Broadcast()
	p.mu.Unlock()
	return p.st.Close()
}
