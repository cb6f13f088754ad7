package cove

import (
	"context"
	"io"
	"time"
)

// ProcessRequest starts a background process.
type ProcessRequest struct {
	// Cmd is the argv; Shell, when Cmd is empty, runs with /bin/sh -c.
	// Giving both is invalid.
	Cmd   []string          `json:"cmd,omitempty"`
	Shell string            `json:"shell,omitempty"`
	Cwd   string            `json:"cwd,omitempty"`
	Env   map[string]string `json:"env,omitempty"`
	// Name labels the process in listings.
	Name string `json:"name,omitempty"`
	// Timeout kills the process after this long (0: never).
	Timeout time.Duration `json:"timeout,omitempty"`
}

// ProcessState is a background process's state.
type ProcessState string

// The process states.
const (
	ProcessRunning ProcessState = "running"
	ProcessExited  ProcessState = "exited"
)

// ProcessOutputKept is how much of each of a background process's
// streams cove keeps, the last bytes written: its logs begin at a line
// that starts within them (unless lines are very long), and once it has
// exited, its result's
// StdoutTruncated and StderrTruncated say whether a stream lost its start.
const ProcessOutputKept = 1 << 20

// Process is a background process.
type Process struct {
	// PID is the process's id inside the sandbox.
	PID       int          `json:"pid"`
	Name      string       `json:"name,omitempty"`
	Cmd       []string     `json:"cmd"`
	State     ProcessState `json:"state"`
	StartedAt time.Time    `json:"started_at"`
	// Result is set once the process has exited.
	Result *ExecResult `json:"result,omitempty"`
}

// ProcessWaiter is what WaitProcessFor asks of a Service.
type ProcessWaiter interface {
	WaitProcess(ctx context.Context, id string, pid int) (*Process, error)
	GetProcess(ctx context.Context, id string, pid int) (*Process, error)
}

// WaitProcessFor waits up to d for a background process to exit and
// returns it: exited, with its Result, or, when d passes first, as it is
// then (ProcessRunning), for the caller to ask again. It is the one answer
// of the front ends that must answer within a time (REST's wait,
// MCP's wait_process). Errors: as WaitProcess and GetProcess, and ctx's
// error when ctx ends first.
func WaitProcessFor(ctx context.Context, svc ProcessWaiter, id string, pid int, d time.Duration) (*Process, error) {
	waitCtx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	p, err := svc.WaitProcess(waitCtx, id, pid)
	if err != nil && waitCtx.Err() != nil && ctx.Err() == nil {
		// The time is up: the process as it is now.
		return svc.GetProcess(ctx, id, pid)
	}
	return p, err
}

// PTYRequest starts an interactive program on a pseudo-terminal.
type PTYRequest struct {
	// Cmd defaults to a login shell (bash -l).
	Cmd  []string          `json:"cmd,omitempty"`
	Env  map[string]string `json:"env,omitempty"`
	Cwd  string            `json:"cwd,omitempty"`
	Cols int               `json:"cols,omitempty"`
	Rows int               `json:"rows,omitempty"`
}

// PTY is an interactive program on a pseudo-terminal: reads return what it
// prints, writes type into it. Read returns io.EOF once the program has
// exited and its output is drained; Wait then gives its result.
type PTY interface {
	io.ReadWriteCloser
	// Resize changes the terminal's size.
	Resize(cols, rows int) error
	// Wait waits for the program to exit.
	Wait() (*ExecResult, error)
}
