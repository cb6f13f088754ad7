package cove

import "time"

// ContextSpec describes a stateful code context to create in a sandbox.
type ContextSpec struct {
	// Language is python, javascript or typescript (or an alias).
	Language string `json:"language"`
	// Cwd is the context's working directory (default /workspace).
	Cwd string `json:"cwd,omitempty"`
	// Env is added to the sandbox's environment for this context.
	Env map[string]string `json:"env,omitempty"`
}

// Context is a live interpreter in a sandbox: variables, imports,
// functions and open files persist from one cell to the next.
type Context struct {
	ID        string            `json:"id"`
	SandboxID string            `json:"sandbox_id"`
	Language  string            `json:"language"`
	Cwd       string            `json:"cwd"`
	Env       map[string]string `json:"env,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
	// Runs counts the cells run since the context (re)started.
	Runs int `json:"runs"`
	// Restarts counts restarts, asked for or forced by a timeout or an
	// out-of-memory kill.
	Restarts int `json:"restarts"`
	// Busy says a cell is running.
	Busy bool `json:"busy"`
}

// CellRequest runs one cell of code in a context.
type CellRequest struct {
	Code string `json:"code"`
	// Timeout overrides the sandbox's wall-clock limit for this cell. A
	// cell past it is interrupted, then killed; the context restarts.
	Timeout time.Duration `json:"timeout,omitempty"`
}

// MIMEBundle is one output in several representations, keyed by MIME type
// ("text/plain", "text/html", "image/png"). Binary data (images) is base64.
type MIMEBundle map[string]string

// CellError is an error a cell raised.
type CellError struct {
	// Name is the exception's class ("ZeroDivisionError", "TypeError").
	Name    string `json:"name"`
	Message string `json:"message"`
	// Traceback is the formatted traceback, its frames pointing at the
	// user's cell (TypeScript lines for TypeScript cells).
	Traceback []string `json:"traceback,omitempty"`
	// Line is the line of the cell where the error was raised (0: unknown).
	Line int `json:"line,omitempty"`
}
