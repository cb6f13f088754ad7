package wire

import (
	"time"

	"github.com/cove-sandbox/cove"
)

// ProcessRequest is the body of POST /v1/sandboxes/{id}/processes.
type ProcessRequest struct {
	Cmd     []string          `json:"cmd,omitempty"`
	Shell   string            `json:"shell,omitempty"`
	Cwd     string            `json:"cwd,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
	Name    string            `json:"name,omitempty"`
	Timeout Duration          `json:"timeout,omitzero"`
}

// ProcessRequestFrom returns r on the wire.
func ProcessRequestFrom(r cove.ProcessRequest) *ProcessRequest {
	return &ProcessRequest{Cmd: r.Cmd, Shell: r.Shell, Cwd: r.Cwd, Env: r.Env, Name: r.Name, Timeout: Duration(r.Timeout)}
}

// Request converts w to a cove.ProcessRequest.
func (w *ProcessRequest) Request() cove.ProcessRequest {
	return cove.ProcessRequest{Cmd: w.Cmd, Shell: w.Shell, Cwd: w.Cwd, Env: w.Env, Name: w.Name, Timeout: time.Duration(w.Timeout)}
}

// Process is cove.Process on the wire.
type Process struct {
	PID       int       `json:"pid"`
	Name      string    `json:"name,omitempty"`
	Cmd       []string  `json:"cmd"`
	State     string    `json:"state"`
	StartedAt time.Time `json:"started_at"`
	Result    *Result   `json:"result,omitempty"`
}

// ProcessFrom returns p on the wire.
func ProcessFrom(p *cove.Process) *Process {
	w := &Process{PID: p.PID, Name: p.Name, Cmd: p.Cmd, State: string(p.State), StartedAt: p.StartedAt}
	if w.Cmd == nil {
		w.Cmd = []string{}
	}
	if p.Result != nil {
		w.Result = ResultFrom(p.Result)
	}
	return w
}

// Cove converts w back to a cove.Process. Errors: invalid.
func (w *Process) Cove() (*cove.Process, error) {
	p := &cove.Process{PID: w.PID, Name: w.Name, Cmd: w.Cmd, State: cove.ProcessState(w.State), StartedAt: w.StartedAt}
	if w.Result != nil {
		r, err := w.Result.Cove()
		if err != nil {
			return nil, err
		}
		p.Result = r
	}
	return p, nil
}

// ProcessList is the answer of GET /v1/sandboxes/{id}/processes.
type ProcessList struct {
	Processes []*Process `json:"processes"`
}

// ProcessLogs is the answer of GET .../processes/{pid}/logs without a
// streaming Accept header: the output kept so far and, once the process
// has exited, its result.
type ProcessLogs struct {
	Stdout         string  `json:"stdout"`
	StdoutEncoding string  `json:"stdout_encoding,omitempty"`
	Stderr         string  `json:"stderr"`
	StderrEncoding string  `json:"stderr_encoding,omitempty"`
	Result         *Result `json:"result,omitempty"`
}

// SignalRequest is the body of POST .../processes/{pid}/signal: a signal
// name ("SIGTERM", "TERM") or number ("15"); empty is SIGTERM.
type SignalRequest struct {
	Signal string `json:"signal"`
}

// The control messages of the terminal WebSocket (text messages; binary
// messages carry terminal bytes).
const (
	// PTYResize, from the client, resizes the terminal.
	PTYResize = "resize"
	// PTYExit, from the server, says the program exited; the server then
	// closes the connection normally.
	PTYExit = "exit"
	// PTYError, from the server, says the terminal failed.
	PTYError = "error"
)

// PTYMessage is a control message of the terminal WebSocket.
type PTYMessage struct {
	Type   string       `json:"type"`
	Cols   int          `json:"cols,omitempty"`
	Rows   int          `json:"rows,omitempty"`
	Result *Result      `json:"result,omitempty"`
	Error  *ErrorDetail `json:"error,omitempty"`
}
