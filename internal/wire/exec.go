package wire

import (
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/cove-sandbox/cove"
)

// ExecRequest is the body of POST /v1/sandboxes/{id}/exec.
type ExecRequest struct {
	Cmd   []string          `json:"cmd,omitempty"`
	Shell string            `json:"shell,omitempty"`
	Cwd   string            `json:"cwd,omitempty"`
	Env   map[string]string `json:"env,omitempty"`
	// Stdin is the program's whole standard input; StdinEncoding is
	// "base64" when it is not text.
	Stdin         *string  `json:"stdin,omitempty"`
	StdinEncoding string   `json:"stdin_encoding,omitempty"`
	Timeout       Duration `json:"timeout,omitzero"`
	// OutputKB (or OutputBytes) overrides the per-stream output limit.
	OutputKB    float64 `json:"output_kb,omitzero"`
	OutputBytes int64   `json:"output_bytes,omitzero"`
}

// ExecRequestFrom returns r on the wire. StdinReader cannot be in the JSON:
// the caller streams it after the request (?stdin=stream).
func ExecRequestFrom(r cove.ExecRequest) *ExecRequest {
	w := &ExecRequest{Cmd: r.Cmd, Shell: r.Shell, Cwd: r.Cwd, Env: r.Env, Timeout: Duration(r.Timeout), OutputBytes: r.OutputBytes}
	w.Stdin, w.StdinEncoding = stdinFrom(r.Stdin)
	return w
}

// Request converts w to a cove.ExecRequest. Errors: invalid.
func (w *ExecRequest) Request() (cove.ExecRequest, error) {
	var errs errList
	stdin, err := stdinOf(w.Stdin, w.StdinEncoding)
	if err != nil {
		errs.add(err.Error())
	}
	out := cove.ExecRequest{
		Cmd: w.Cmd, Shell: w.Shell, Cwd: w.Cwd, Env: w.Env, Stdin: stdin,
		Timeout:     time.Duration(w.Timeout),
		OutputBytes: errs.size("output", w.OutputKB, kib, w.OutputBytes),
	}
	return out, errs.err("invalid request")
}

// errCodeRequired is the error of a request without its code.
func errCodeRequired(what string) error {
	return cove.Errorf(cove.CodeInvalid, `code is required: send %s as "code" (a string; "" is an empty program)`, what)
}

func stdinFrom(b []byte) (*string, string) {
	if b == nil {
		return nil, ""
	}
	s, enc := EncodeData(b)
	return &s, enc
}

// stdinOf decodes a request's stdin; its errors name the field at fault.
func stdinOf(s *string, enc string) ([]byte, error) {
	if _, err := DecodeData("", enc); err != nil {
		return nil, fmt.Errorf("stdin_encoding: %w", err)
	}
	if s == nil {
		return nil, nil
	}
	b, err := DecodeData(*s, enc)
	if err != nil {
		return nil, fmt.Errorf("stdin: %w", err)
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}

// CodeRequest is the body of POST /v1/sandboxes/{id}/code.
type CodeRequest struct {
	Language string `json:"language,omitempty"`
	// Code is required; nil tells a request without it from an empty
	// program ("").
	Code          *string           `json:"code"`
	Filename      string            `json:"filename,omitempty"`
	Argv          []string          `json:"argv,omitempty"`
	Stdin         *string           `json:"stdin,omitempty"`
	StdinEncoding string            `json:"stdin_encoding,omitempty"`
	Env           map[string]string `json:"env,omitempty"`
	Timeout       Duration          `json:"timeout,omitzero"`
}

// CodeRequestFrom returns r on the wire (StdinReader as for
// ExecRequestFrom).
func CodeRequestFrom(r cove.CodeRequest) *CodeRequest {
	code := r.Code
	w := &CodeRequest{Language: r.Language, Code: &code, Filename: r.Filename, Argv: r.Argv, Env: r.Env, Timeout: Duration(r.Timeout)}
	w.Stdin, w.StdinEncoding = stdinFrom(r.Stdin)
	return w
}

// Request converts w to a cove.CodeRequest. Errors: invalid (code
// missing, or a malformed stdin).
func (w *CodeRequest) Request() (cove.CodeRequest, error) {
	if w.Code == nil {
		return cove.CodeRequest{}, errCodeRequired("the program's source")
	}
	stdin, err := stdinOf(w.Stdin, w.StdinEncoding)
	if err != nil {
		return cove.CodeRequest{}, cove.Errorf(cove.CodeInvalid, "invalid request: %s", err.Error())
	}
	return cove.CodeRequest{
		Language: w.Language, Code: *w.Code, Filename: w.Filename, Argv: w.Argv,
		Stdin: stdin, Env: w.Env, Timeout: time.Duration(w.Timeout),
	}, nil
}

// RunRequest is the body of POST /v1/run: code and its files, run in a
// sandbox made for it and destroyed afterwards (or reset for the same
// key's next run: the server's run_reuse). As in CreateSandbox, limits
// may be given at the top level (memory_mb, cpus, ...), in a nested
// "limits" object, or both as long as they agree.
type RunRequest struct {
	CodeRequest
	// Limits at the top level; the top-level timeout is CodeRequest's,
	// which for a run is the same limit.
	ResourceLimits
	// Nested limits; limits.timeout is the sandbox's limit, which the
	// top-level timeout overrides.
	NestedLimits *Limits `json:"limits,omitempty"`
	// Files are written into the workspace first, keyed by their path
	// relative to it.
	Files map[string]FileContent `json:"files,omitempty"`
}

// RunRequestFrom returns r on the wire (limits nested).
func RunRequestFrom(r cove.RunRequest) *RunRequest {
	w := &RunRequest{CodeRequest: *CodeRequestFrom(r.CodeRequest)}
	if len(r.Files) > 0 {
		w.Files = make(map[string]FileContent, len(r.Files))
		for k, v := range r.Files {
			w.Files[k] = FileContent(v)
		}
	}
	if r.Limits != (cove.Limits{}) {
		l := LimitsFrom(r.Limits)
		w.NestedLimits = &l
	}
	return w
}

// Request converts w to a cove.RunRequest. Errors: invalid.
func (w *RunRequest) Request() (cove.RunRequest, error) {
	cr, err := w.CodeRequest.Request()
	if err != nil {
		return cove.RunRequest{}, err
	}
	out := cove.RunRequest{CodeRequest: cr}
	l := Limits{ResourceLimits: w.ResourceLimits}
	if w.NestedLimits != nil {
		if l, err = l.Merge(*w.NestedLimits); err != nil {
			return cove.RunRequest{}, err
		}
	}
	if out.Limits, err = l.Cove(); err != nil {
		return cove.RunRequest{}, err
	}
	if len(w.Files) > 0 {
		out.Files = make(map[string][]byte, len(w.Files))
		for k, v := range w.Files {
			if v == nil {
				v = FileContent{}
			}
			out.Files[k] = v
		}
	}
	return out, nil
}

// Result is cove.ExecResult on the wire. In a stream, output comes as
// events and Stdout and Stderr of the exit event's result are empty.
type Result struct {
	Verdict         string `json:"verdict"`
	ExitCode        int    `json:"exit_code"`
	Signal          string `json:"signal,omitempty"`
	Stdout          string `json:"stdout"`
	StdoutEncoding  string `json:"stdout_encoding,omitempty"`
	Stderr          string `json:"stderr"`
	StderrEncoding  string `json:"stderr_encoding,omitempty"`
	StdoutTruncated bool   `json:"stdout_truncated"`
	StderrTruncated bool   `json:"stderr_truncated"`
	WallMS          int64  `json:"wall_ms"`
	CPUMS           int64  `json:"cpu_ms"`
	PeakMemoryBytes int64  `json:"peak_memory_bytes"`
	Message         string `json:"message,omitempty"`
	Reason          string `json:"reason,omitempty"`
	Limits          Limits `json:"limits"`
}

// ResultFrom returns r on the wire.
func ResultFrom(r *cove.ExecResult) *Result {
	w := &Result{
		Verdict: string(r.Verdict), ExitCode: r.ExitCode, Signal: r.Signal,
		StdoutTruncated: r.StdoutTruncated, StderrTruncated: r.StderrTruncated,
		WallMS: r.WallMS, CPUMS: r.CPUMS, PeakMemoryBytes: r.PeakMemoryBytes,
		Message: r.Message, Reason: string(r.Reason), Limits: LimitsFrom(r.Limits),
	}
	w.Stdout, w.StdoutEncoding = EncodeData(cutWhole([]byte(r.Stdout), r.StdoutTruncated))
	w.Stderr, w.StderrEncoding = EncodeData(cutWhole([]byte(r.Stderr), r.StderrTruncated))
	return w
}

// cutWhole drops from output that a limit cut the part of a character the
// cut split, so that text stays text rather than going as base64 for
// that one character.
func cutWhole(b []byte, truncated bool) []byte {
	if !truncated || utf8.Valid(b) {
		return b
	}
	for n := 1; n < utf8.UTFMax && n <= len(b); n++ {
		if utf8.Valid(b[:len(b)-n]) {
			return b[:len(b)-n]
		}
	}
	return b
}

// Cove converts w back to a cove.ExecResult. Errors: invalid.
func (w *Result) Cove() (*cove.ExecResult, error) {
	var errs errList
	stdout, err := DecodeData(w.Stdout, w.StdoutEncoding)
	if err != nil {
		errs.add("stdout: " + err.Error())
	}
	stderr, err := DecodeData(w.Stderr, w.StderrEncoding)
	if err != nil {
		errs.add("stderr: " + err.Error())
	}
	limits, err := w.Limits.Cove()
	if err != nil {
		errs.add(err.Error())
	}
	if err := errs.err("malformed result"); err != nil {
		return nil, err
	}
	return &cove.ExecResult{
		Verdict: cove.Verdict(w.Verdict), ExitCode: w.ExitCode, Signal: w.Signal,
		Stdout: string(stdout), Stderr: string(stderr),
		StdoutTruncated: w.StdoutTruncated, StderrTruncated: w.StderrTruncated,
		WallMS: w.WallMS, CPUMS: w.CPUMS, PeakMemoryBytes: w.PeakMemoryBytes,
		Message: w.Message, Reason: cove.Reason(w.Reason), Limits: limits,
	}, nil
}

// EventError is the type of an event that ends a stream with an error the
// service returned after the stream had started.
const EventError = "error"

// Event is one item of a stream, one JSON object per NDJSON line or per
// SSE event: {"type": "stdout", "data": "..."}, with "encoding": "base64"
// for output that is not UTF-8; last {"type": "exit", "result": {...}}; or,
// when the stream fails, {"type": "error", "error": {...}}.
type Event struct {
	Type     string       `json:"type"`
	Data     string       `json:"data,omitempty"`
	Encoding string       `json:"encoding,omitempty"`
	Result   *Result      `json:"result,omitempty"`
	Error    *ErrorDetail `json:"error,omitempty"`
	// Bundle and Exception carry a context cell's result, display and
	// exception events.
	Bundle    cove.MIMEBundle `json:"bundle,omitempty"`
	Exception *cove.CellError `json:"exception,omitempty"`
}

// EventFrom returns ev on the wire.
func EventFrom(ev cove.Event) *Event {
	w := &Event{Type: string(ev.Type)}
	if ev.Data != nil {
		w.Data, w.Encoding = EncodeData(ev.Data)
	}
	if ev.Result != nil {
		w.Result = ResultFrom(ev.Result)
	}
	w.Bundle, w.Exception = ev.Bundle, ev.Exception
	return w
}

// Cove converts w back to a cove.Event; an error event becomes its
// *cove.Error. Errors: invalid (a malformed event).
func (w *Event) Cove() (cove.Event, error) {
	switch w.Type {
	case EventError:
		if w.Error == nil {
			return cove.Event{}, cove.Errorf(cove.CodeInternal, "the stream failed without saying why")
		}
		return cove.Event{}, w.Error.Err()
	case string(cove.EventExit):
		if w.Result == nil {
			return cove.Event{}, cove.Errorf(cove.CodeInvalid, "malformed event: exit without a result")
		}
		r, err := w.Result.Cove()
		if err != nil {
			return cove.Event{}, err
		}
		return cove.Event{Type: cove.EventExit, Result: r}, nil
	}
	data, err := DecodeData(w.Data, w.Encoding)
	if err != nil {
		return cove.Event{}, cove.Errorf(cove.CodeInvalid, "malformed %s event: %s", cove.Excerpt(w.Type, 64), err.Error())
	}
	return cove.Event{Type: cove.EventType(w.Type), Data: data, Bundle: w.Bundle, Exception: w.Exception}, nil
}
