package cove

import (
	"io"
	"time"
)

// Verdict says how an execution ended. A failing user program is a result,
// not an error.
type Verdict string

// The verdicts.
const (
	VerdictOK          Verdict = "ok"           // exited with status 0
	VerdictExitNonzero Verdict = "exit_nonzero" // exited with a non-zero status
	VerdictTimeout     Verdict = "timeout"      // killed at the wall-clock limit
	VerdictOOMKilled   Verdict = "oom_killed"   // killed for exceeding the memory limit
	VerdictOutputLimit Verdict = "output_limit" // killed for exceeding the output limit
	VerdictKilled      Verdict = "killed"       // killed by a signal (its own, the user's or a cancellation)
	VerdictSetupFailed Verdict = "setup_failed" // the program could not be started
	VerdictError       Verdict = "error"        // a context's cell raised an error
)

// ExecRequest runs one command in a sandbox.
type ExecRequest struct {
	// Cmd is the argv; Cmd[0] is looked up in the sandbox's PATH.
	Cmd []string `json:"cmd,omitempty"`
	// Shell, when Cmd is empty, is run with /bin/sh -c. Giving both is
	// invalid.
	Shell string `json:"shell,omitempty"`
	// Cwd defaults to /workspace; a relative one is inside /workspace.
	Cwd string `json:"cwd,omitempty"`
	// Env is added to the sandbox's clean default environment.
	Env map[string]string `json:"env,omitempty"`
	// Stdin is the program's whole standard input.
	Stdin []byte `json:"stdin,omitempty"`
	// StdinReader, when set, streams standard input instead of Stdin, as
	// the program runs: in-process, and through client.Client, which sends
	// it in the request's body (?stdin=stream); it is not part of the JSON.
	// A Read in progress when the execution ends may go on and take what
	// comes next (see client.Client.Exec): give a reader of this
	// execution's own, such as an io.Pipe, rather than one shared with
	// later executions.
	StdinReader io.Reader `json:"-"`
	// Timeout overrides the sandbox's wall-clock limit for this execution.
	Timeout time.Duration `json:"timeout,omitempty"`
	// OutputBytes overrides the sandbox's per-stream output limit.
	OutputBytes int64 `json:"output_bytes,omitempty"`
}

// CodeRequest runs a piece of source code as a program.
type CodeRequest struct {
	// Language is a language name or alias (python, py, javascript, js,
	// node, typescript, ts, bash, sh).
	Language string `json:"language"`
	// Code is the program's source.
	Code string `json:"code"`
	// Filename, when set, names the source file in the workspace and in
	// error messages (for example "main.ts"). A name without an extension
	// of the language gets its first one ("snippet" runs as snippet.py);
	// another language's extension is invalid.
	Filename string `json:"filename,omitempty"`
	// Argv is passed to the program after its name.
	Argv []string `json:"argv,omitempty"`
	// Stdin and StdinReader are as in ExecRequest.
	Stdin       []byte    `json:"stdin,omitempty"`
	StdinReader io.Reader `json:"-"`
	// Env is added to the default environment.
	Env map[string]string `json:"env,omitempty"`
	// Timeout overrides the wall-clock limit.
	Timeout time.Duration `json:"timeout,omitempty"`
}

// RunRequest runs code in a new sandbox that is destroyed afterwards.
type RunRequest struct {
	CodeRequest
	// Limits override the defaults for the ephemeral sandbox.
	Limits Limits `json:"limits,omitempty"`
	// Files are written into the workspace before the program starts,
	// keyed by their path relative to /workspace.
	Files map[string][]byte `json:"files,omitempty"`
}

// ExecResult is the outcome of one execution.
type ExecResult struct {
	Verdict  Verdict `json:"verdict"`
	ExitCode int     `json:"exit_code"`
	// Signal names the signal that ended the program ("SIGKILL"), if any.
	Signal string `json:"signal,omitempty"`
	// Stdout and Stderr are filled by collecting helpers (Collect); a
	// streamed execution delivers them as events instead.
	Stdout          string `json:"stdout"`
	Stderr          string `json:"stderr"`
	StdoutTruncated bool   `json:"stdout_truncated"`
	StderrTruncated bool   `json:"stderr_truncated"`
	WallMS          int64  `json:"wall_ms"`
	CPUMS           int64  `json:"cpu_ms"`
	PeakMemoryBytes int64  `json:"peak_memory_bytes"`
	// Message explains the verdict in one line when it is not ok or
	// exit_nonzero, e.g. "killed: out of memory (limit 64 MiB)"; a
	// context's cell of any verdict also has one when it ran in a fresh
	// interpreter because the last one ended while idle (its state is lost).
	Message string `json:"message,omitempty"`
	// Reason, on a setup_failed result, says why the program could not
	// start when a client may act on it (ReasonDiskFull: its files did not
	// fit in the workspace); "" otherwise.
	Reason Reason `json:"reason,omitempty"`
	// Limits are the limits that applied.
	Limits Limits `json:"limits"`
}

// EventType tags an execution event.
type EventType string

// The event types.
const (
	EventStdout EventType = "stdout"
	EventStderr EventType = "stderr"
	EventExit   EventType = "exit"
	// Events of a context's cell (RunCell).
	EventResult    EventType = "result"    // the value of the cell's last expression (Bundle)
	EventDisplay   EventType = "display"   // display data: a chart, a table (Bundle)
	EventException EventType = "exception" // the error the cell raised (Exception)
)

// Event is one item of an execution's stream: a chunk of output, display
// data or an error of a cell, or the final result (always last).
type Event struct {
	Type      EventType   `json:"type"`
	Data      []byte      `json:"data,omitempty"`
	Bundle    MIMEBundle  `json:"bundle,omitempty"`
	Exception *CellError  `json:"exception,omitempty"`
	Result    *ExecResult `json:"result,omitempty"`
}

// ExecutionID returns the id of the running execution st delivers, which
// StopExecution takes, or "" when st has none (a context's cell, a
// process's logs).
func ExecutionID(st Stream) string {
	if e, ok := st.(interface{ ExecutionID() string }); ok {
		return e.ExecutionID()
	}
	return ""
}

// Stream delivers an execution's events in order. Next returns io.EOF after
// the exit event, and ctx.Err() once the context is cancelled. Close stops
// the execution if it is still running and releases the stream.
type Stream interface {
	Next() (Event, error)
	Close() error
}
