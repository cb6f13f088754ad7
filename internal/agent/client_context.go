package agent

import (
	"context"
	"encoding/json"
	"io"
	"sync"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/cove-sandbox/cove"
)

// Stateful code contexts. A context is a long-lived interpreter (a driver
// of package kernels) in the sandbox; its cells run one after another in
// it and share its variables, imports and functions. The interpreter runs
// as an execution does: as the sandbox user, in an execution cgroup of its
// own, under the sandbox's limits. A cell that times out, runs the
// sandbox out of memory or kills its interpreter ends, and the agent
// replaces the interpreter with a fresh one (CellResult.Restarted): the
// next cell works, without the old state.

// ContextSpec starts a context's interpreter.
type ContextSpec struct {
	ID       string   `json:"id"`       // chosen by the host, unique in the sandbox
	Language string   `json:"language"` // a kernels language: "python" or "javascript"
	Env      []string `json:"env"`      // the complete environment
	Dir      string   `json:"dir"`      // working directory (default /workspace)
}

// CellSpec runs one cell.
type CellSpec struct {
	Code        string `json:"code"`
	Filename    string `json:"filename"`             // e.g. "<cell 3>" or "cell3.ts"
	SourceMap   string `json:"source_map,omitempty"` // for transpiled TypeScript
	TimeoutMS   int64  `json:"timeout_ms"`           // 0: none
	OutputLimit int64  `json:"output_limit"`         // per stream, 0: none
}

// RunCellSpec runs a cell in a context (Request.RunCell).
type RunCellSpec struct {
	// Context is the id of the context.
	Context string   `json:"context"`
	Cell    CellSpec `json:"cell"`
}

// CellEvent is one event of a running cell. Type is "stdout", "stderr"
// (Data), "result", "display" (Bundle), "exception" (Exception), or
// "done" (Result), last.
type CellEvent struct {
	Type      string
	Data      []byte
	Bundle    map[string]string
	Exception *cove.CellError
	Result    *CellResult
}

// CellResult ends a cell.
type CellResult struct {
	// Status is ok, error (the cell raised), interrupted, or died: the
	// interpreter ended during the cell, by itself (ExitCode, Signal) or
	// killed because the cell timed out, ran out of memory or ignored an
	// interrupt.
	Status        string `json:"status"`
	TimedOut      bool   `json:"timed_out,omitempty"`
	OOMKilled     bool   `json:"oom_killed,omitempty"`
	OutputLimited bool   `json:"output_limited,omitempty"`
	Restarted     bool   `json:"restarted,omitempty"` // the interpreter was replaced by a fresh one: state is lost
	ExitCode      int    `json:"exit_code,omitempty"` // when it died
	Signal        int    `json:"signal,omitempty"`
	// EndedIdle, when the interpreter had ended between cells and this
	// cell had to start a fresh one (Restarted), says how it ended:
	// "was killed for lack of memory", "exited with code 3". Contexts
	// share the sandbox's memory, and the kernel's OOM killer may take
	// an idle context's interpreter for another's cell.
	EndedIdle string `json:"ended_idle,omitempty"`
	// RestartRequested says the interpreter died because the host asked
	// for a restart of the context (RestartContext) during the cell.
	RestartRequested bool `json:"restart_requested,omitempty"`

	StdoutTruncated bool `json:"stdout_truncated,omitempty"`
	StderrTruncated bool `json:"stderr_truncated,omitempty"`
	// WallNS is the cell's wall-clock time. CPUNS is the CPU time of the
	// interpreter's threads and of the children it waited for, as the
	// driver measures it over the cell (else read from /proc, to 10 ms,
	// since the previous cell ended; for an interpreter that died, since
	// the previous cell). PeakMemory is the sandbox's peak memory use
	// over the cell (and the idle time before it) when nothing else ran,
	// else the interpreter's own peak resident memory since it started.
	WallNS     int64 `json:"wall_ns"`
	CPUNS      int64 `json:"cpu_ns"`
	PeakMemory int64 `json:"peak_memory"`
}

// StartContext starts a context's interpreter and returns once it is
// ready for cells. Errors: invalid (unknown language, bad id), conflict
// (the id is in use, or the sandbox has as many contexts as it may),
// unavailable (the interpreter is not installed in the sandbox, or it
// ended at start: the message has what it printed).
func (c *Client) StartContext(ctx context.Context, spec *ContextSpec) error {
	_, err := c.call(ctx, &Request{StartContext: spec})
	return err
}

// InterruptContext interrupts the cell running in a context (SIGINT to
// its interpreter: a KeyboardInterrupt in Python). An idle context is
// left alone. Errors: not_found.
func (c *Client) InterruptContext(ctx context.Context, id string) error {
	_, err := c.call(ctx, &Request{InterruptContext: id})
	return err
}

// RestartContext kills a context's interpreter, with everything it
// started, and starts a fresh one with the same spec; a running cell ends
// with status died and RestartRequested. It returns once the fresh
// interpreter is ready, and the context takes a cell at once, even while
// the killed cell's result is still on its way to its caller. Errors:
// not_found, unavailable (the new interpreter did not start).
func (c *Client) RestartContext(ctx context.Context, id string) error {
	_, err := c.call(ctx, &Request{RestartContext: id})
	return err
}

// StopContext kills a context's interpreter, with everything it started,
// and forgets the context. Errors: not_found.
func (c *Client) StopContext(ctx context.Context, id string) error {
	_, err := c.call(ctx, &Request{StopContext: id})
	return err
}

// cellCloseWait bounds how long Cell.Close waits for an interrupted cell
// to end: the agent kills a cell that ignores the interrupt for a second,
// then starts a fresh interpreter.
const cellCloseWait = 3 * time.Second

// Cell is a cell running in a context. Next and Close may be called from
// different goroutines.
type Cell struct {
	st   *yamux.Stream
	ctx  context.Context
	stop func() bool

	wmu sync.Mutex // frames to the agent
	rmu sync.Mutex // reads of the stream

	mu       sync.Mutex
	done     bool          // the result was read
	closed   bool          // Close was called
	finished chan struct{} // closed when the stream has ended
}

// RunCell starts a cell in a context and returns once it runs; Next
// yields its events. Cancelling ctx interrupts the cell, as Close does.
// Errors: not_found, conflict (a cell is already running in it),
// unavailable (its interpreter had ended and could not be started again).
func (c *Client) RunCell(ctx context.Context, id string, cell *CellSpec) (*Cell, error) {
	st, err := c.open(ctx, &Request{RunCell: &RunCellSpec{Context: id, Cell: *cell}})
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { st.Close() })
	if _, err := readAck(ctx, st); err != nil {
		stop()
		st.Close()
		return nil, err
	}
	return &Cell{st: st, ctx: ctx, stop: stop, finished: make(chan struct{})}, nil
}

// Next returns the cell's next event; the last is "done". After it Next
// returns io.EOF; after cancellation, the context's error.
func (c *Cell) Next() (CellEvent, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.isDone() {
		return CellEvent{}, io.EOF
	}
	if err := c.ctx.Err(); err != nil {
		c.end()
		return CellEvent{}, err
	}
	typ, payload, err := readFrame(c.st)
	if err != nil {
		c.end()
		if c.ctx.Err() != nil {
			return CellEvent{}, c.ctx.Err()
		}
		c.mu.Lock()
		closed := c.closed
		c.mu.Unlock()
		if closed {
			return CellEvent{}, io.EOF
		}
		return CellEvent{}, agentGone(err)
	}
	return c.event(typ, payload)
}

// event decodes one frame of the cell's stream.
func (c *Cell) event(typ byte, payload []byte) (CellEvent, error) {
	switch typ {
	case frameStdout:
		return CellEvent{Type: "stdout", Data: payload}, nil
	case frameStderr:
		return CellEvent{Type: "stderr", Data: payload}, nil
	case frameDisplay, frameValue:
		var b map[string]string
		if err := json.Unmarshal(payload, &b); err != nil {
			return CellEvent{}, cove.Errorf(cove.CodeInternal, "malformed cell output: %w", err)
		}
		t := "display"
		if typ == frameValue {
			t = "result"
		}
		return CellEvent{Type: t, Bundle: b}, nil
	case frameException:
		var e cove.CellError
		if err := json.Unmarshal(payload, &e); err != nil {
			return CellEvent{}, cove.Errorf(cove.CodeInternal, "malformed cell exception: %w", err)
		}
		return CellEvent{Type: "exception", Exception: &e}, nil
	case frameResult:
		var r CellResult
		err := json.Unmarshal(payload, &r)
		c.mu.Lock()
		c.done = true
		c.mu.Unlock()
		c.end()
		if err != nil {
			return CellEvent{}, cove.Errorf(cove.CodeInternal, "malformed cell result: %w", err)
		}
		return CellEvent{Type: "done", Result: &r}, nil
	}
	c.end()
	if err := frameErr(typ, payload); err != nil {
		return CellEvent{}, err
	}
	return CellEvent{}, cove.Errorf(cove.CodeInternal, "unexpected agent frame %q", typ)
}

func (c *Cell) isDone() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.done
}

// end releases the stream once it has nothing more to say.
func (c *Cell) end() {
	c.mu.Lock()
	select {
	case <-c.finished:
	default:
		close(c.finished)
	}
	c.mu.Unlock()
	c.stop()
	c.st.Close()
}

// Close releases the cell. Before done it interrupts the cell and waits
// briefly for it to end (the agent kills a cell that ignores the
// interrupt for a second and restarts its interpreter), dropping its
// remaining events.
func (c *Cell) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	done := c.done
	c.mu.Unlock()
	if !done {
		c.wmu.Lock()
		err := writeFrame(c.st, frameSignal, []byte("2"))
		c.wmu.Unlock()
		if err == nil {
			c.waitDone()
		}
	}
	c.end()
	return nil
}

// waitDone drops events until done, for cellCloseWait at most. If Next
// is reading in another goroutine, it waits for that reader to see done.
func (c *Cell) waitDone() {
	if !c.rmu.TryLock() {
		select {
		case <-c.finished:
		case <-time.After(cellCloseWait):
		}
		return
	}
	defer c.rmu.Unlock()
	c.st.SetReadDeadline(time.Now().Add(cellCloseWait))
	for !c.isDone() {
		typ, payload, err := readFrame(c.st)
		if err != nil {
			return
		}
		if typ == frameResult || typ == frameError {
			c.event(typ, payload)
			return
		}
	}
}

// EndedIdleNote says, in one line, that a context's interpreter ended
// between cells as how says (CellResult.EndedIdle), and what that means
// for the cell that replaced it: the agent starts that cell's stderr with
// it, and the host's result message says the same.
func EndedIdleNote(how string) string {
	return "while the context was idle, its interpreter " + how + "; a fresh one took its place, without the state of the earlier cells"
}
