package mcpserver

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/client"
	"github.com/cove-sandbox/cove/internal/egress"
	"github.com/cove-sandbox/cove/internal/lang"
)

// toolError is a failed call as the model sees it: a tool result with
// isError set (the SDK turns a handler's error into one), whose text names
// the error's code and says what to do.
type toolError struct{ text string }

func (e *toolError) Error() string { return e.text }

// fail turns err into a tool error. This is the one place where errors
// become MCP: internal errors are logged with an id, and only the id
// reaches the model.
func (s *Server) fail(tool string, err error) error {
	return s.failHint(tool, err, "")
}

// failHint is fail with a hint that fits the error better than the
// tool's hint for its code; an empty hint picks that one.
func (s *Server) failHint(tool string, err error, hint string) error {
	code := cove.ErrorCode(err)
	msg := cove.ErrorMessage(err)
	if code == cove.CodeInternal {
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			code = cove.CodeTimeout
		case errors.Is(err, context.Canceled):
			code = cove.CodeUnavailable
			msg = "the call was cancelled before it finished (by the client, or because the MCP session or the server is ending)"
			if hint == "" {
				hint = cancelledHint
			}
		}
	}
	if hint == "" {
		hint = connectionHint(err)
	}
	if _, known := cove.Codes[code]; !known {
		code = cove.CodeInternal
	}
	if code == cove.CodeInternal {
		id := errorID()
		s.log.Error("internal error", "id", id, "tool", tool, "err", err)
		msg = "internal error (id " + id + ")"
	}
	text := fmt.Sprintf("error (%s): %s", code, msg)
	if hint == "" {
		hint = reasonHints[cove.ErrorReason(err)]
	}
	if hint == "" {
		hint = errorHint(tool, code)
	}
	if hint != "" {
		text += "\nhint: " + hint
	}
	return &toolError{text: text}
}

// invalid is a tool error for arguments that do not fit together.
func (s *Server) invalid(tool, format string, args ...any) error {
	return s.fail(tool, cove.Errorf(cove.CodeInvalid, format, args...))
}

// errorHints say what a model can do about an error of each code, where
// toolHints has nothing more fitting for the tool.
var errorHints = map[cove.Code]string{
	cove.CodeInvalid:       "fix that argument as the message says and call the tool again",
	cove.CodeUnavailable:   "cove cannot do this now, for the reason the message gives: if it is shutting down or restarting, call the tool again in a minute; if a part of the host is missing or broken (root, namespaces, cgroups, disk), calling again will not help: a human must fix cove's host",
	cove.CodeTimeout:       "cove did not finish the operation in time (not your program's time limit, which ends in a result with verdict timeout): call the tool again; if it keeps timing out, cove's host is busy: make fewer calls at once",
	cove.CodeInternal:      "this is a fault in cove, not in your arguments or program, and a human can find its detail in cove's log by the id: calling again may work, but do not retry in a loop",
	cove.CodeNotFound:      "check the sandbox_id: list_sandboxes lists your sandboxes",
	cove.CodeConflict:      "the message says what is in the way: deal with it as the message says, then call the tool again",
	cove.CodeQuotaExceeded: "delete sandboxes you no longer need (list_sandboxes, delete_sandbox) or wait for running work to finish",
	cove.CodeUnauthorized:  "the API key that cove mcp uses (COVE_API_KEY, or the server's admin key) is missing, wrong or revoked: a human must fix cove mcp's configuration",
	cove.CodeForbidden:     "the API key that cove mcp uses is valid but may not do this (it is not an admin's); work within your own sandboxes",
}

// reasonHints say what a model can do about an error of a reason
// (cove.Reason), which is more than its code says.
var reasonHints = map[cove.Reason]string{
	cove.ReasonDiskFull:    diskFullHint,
	cove.ReasonFileExists:  "run the code under another filename, or move that file first (exec_command with mv) if it may be replaced",
	cove.ReasonSandboxGone: "the sandbox no longer exists, and its files went with it: create_sandbox makes a new one",
}

const diskFullHint = "the workspace has no space left: delete files you no longer need in it (delete_file, or exec_command with rm), or create a sandbox with a larger disk_mb (create_sandbox) and work there"

// cancelledHint is the hint of a call cancelled before it finished.
const cancelledHint = "if the session is still open and you still need the result, call the tool again; what the call had started may have happened in part (list_sandboxes and list_files show what is there)"

// connectionHint is the hint of an error of the SDK client that cove mcp
// uses against a server (COVE_URL) when it cannot connect to that
// server, which only a human can start or point elsewhere; "" for other
// errors. The in-process service, and so cove serve's MCP, makes no such
// errors: they carry the *url.Error of an HTTP request under an
// unavailable *cove.Error.
func connectionHint(err error) string {
	var ce *cove.Error
	var ue *url.Error
	if !errors.As(err, &ce) || ce.Code != cove.CodeUnavailable || !errors.As(ce.Err, &ue) {
		return ""
	}
	if client.IsUnreachable(ue) {
		return "nothing answers at that address: a human must start the cove server there (cove serve), or point cove mcp's COVE_URL at a running one; call the tool again once it runs"
	}
	// Connected, then failed: https to a plain HTTP server or the
	// other way round, a certificate, a dropped connection.
	return fmt.Sprintf("the connection to the cove server failed (%v): check that cove mcp's COVE_URL has the server's scheme (http or https), host and port; a dropped connection may pass on a second call", ue.Err)
}

// Hints of errors a tool's arguments name something that is not there.
const (
	fileNotFoundHint    = "check the sandbox_id and the path: list_files lists a sandbox's files, list_sandboxes your sandboxes"
	processNotFoundHint = "check the sandbox_id and the pid: list_processes lists a sandbox's background processes, list_sandboxes your sandboxes"
	// kill_process conflicts when the process has exited (or the
	// sandbox is stopped, which stoppedHint says).
	killConflictHint    = "a process that has already exited is not signalled, and needs no signal: process_logs shows its output and how it ended"
	contextNotFoundHint = "check the sandbox_id and the context_id: without context_id the cell runs in this session's context for the language; list_sandboxes lists your sandboxes"
)

// toolHints are the hints of errors of a code from one tool.
var toolHints = map[string]map[cove.Code]string{
	"read_file":      {cove.CodeNotFound: fileNotFoundHint},
	"write_file":     {cove.CodeNotFound: fileNotFoundHint},
	"list_files":     {cove.CodeNotFound: fileNotFoundHint},
	"delete_file":    {cove.CodeNotFound: fileNotFoundHint},
	"process_logs":   {cove.CodeNotFound: processNotFoundHint},
	"wait_process":   {cove.CodeNotFound: processNotFoundHint},
	"kill_process":   {cove.CodeNotFound: processNotFoundHint, cove.CodeConflict: killConflictHint},
	"run_in_context": {cove.CodeNotFound: contextNotFoundHint},
	"run_code":       {cove.CodeConflict: "the message says what is in the way: a file of the workspace that the code would be written over can be kept by passing another filename"},
	"resources/read": {cove.CodeNotFound: fileNotFoundHint},
}

// errorHint says what a model can do about an error of code from tool.
func errorHint(tool string, code cove.Code) string {
	if h := toolHints[tool][code]; h != "" {
		return h
	}
	return errorHints[code]
}

func errorID() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// clip shortens s to about max characters for a model, keeping its start
// and its end (where errors usually are), and says how much it cut and
// how to read all of it.
func clip(s string, max int) (string, bool) {
	return clipWith(s, max, "write it to a file and read parts of it with read_file")
}

// clipWith is clip with its own advice on reading the whole output.
func clipWith(s string, max int, advice string) (string, bool) {
	if len(s) <= max {
		return s, false
	}
	head, tail := max/2, max-max/2
	for head > 0 && !utf8.RuneStart(s[head]) {
		head--
	}
	start := len(s) - tail
	for start < len(s) && !utf8.RuneStart(s[start]) {
		start++
	}
	return fmt.Sprintf("%s\n[... %d bytes cut here: the output has %d bytes; %s ...]\n%s",
		s[:head], start-head, len(s), advice, s[start:]), true
}

// execOutput is the structured result of a program or command.
type execOutput struct {
	SandboxID       string `json:"sandbox_id,omitempty" jsonschema:"the sandbox the program ran in, when it stays after the run"`
	Verdict         string `json:"verdict" jsonschema:"how the program ended: ok, exit_nonzero, timeout, oom_killed, output_limit, killed or setup_failed"`
	ExitCode        int    `json:"exit_code" jsonschema:"the program's exit status"`
	Signal          string `json:"signal,omitempty" jsonschema:"the signal that ended the program, if any"`
	Stdout          string `json:"stdout" jsonschema:"standard output (long output is cut in the middle)"`
	Stderr          string `json:"stderr" jsonschema:"standard error (long output is cut in the middle)"`
	OutputCut       bool   `json:"output_cut,omitempty" jsonschema:"stdout or stderr was cut, by the sandbox's output limit or for length here"`
	WallMS          int64  `json:"wall_ms" jsonschema:"wall-clock time in milliseconds"`
	CPUMS           int64  `json:"cpu_ms" jsonschema:"CPU time in milliseconds"`
	PeakMemoryBytes int64  `json:"peak_memory_bytes" jsonschema:"peak memory use in bytes"`
	Message         string `json:"message,omitempty" jsonschema:"why cove stopped the program, when it did"`
	Hint            string `json:"hint,omitempty" jsonschema:"what to change when a limit was hit"`
}

// runInfo is what a tool knows of how a program was run, which its
// result's hint may depend on.
type runInfo struct {
	// newSandbox says whether the call could have given the sandbox
	// other limits (run_code without sandbox_id).
	newSandbox bool
	// badCwd is the working directory the call named (cwd) when it is
	// not a directory of the workspace.
	badCwd string
	// command is the shell command line that ran, when there was one
	// (exec_command, run_code in bash).
	command string
}

// execOutputOf is the structured form of a finished execution.
func (s *Server) execOutputOf(res *cove.ExecResult, sandboxID string, info runInfo) execOutput {
	out := execOutput{
		SandboxID: sandboxID, Verdict: string(res.Verdict), ExitCode: res.ExitCode, Signal: res.Signal,
		WallMS: res.WallMS, CPUMS: res.CPUMS, PeakMemoryBytes: res.PeakMemoryBytes, Message: res.Message,
	}
	var cutOut, cutErr bool
	out.Stdout, cutOut = clip(toolNetworkSyntax(res.Stdout), s.opts.MaxOutputChars)
	out.Stderr, cutErr = clip(toolNetworkSyntax(res.Stderr), s.opts.MaxOutputChars)
	out.OutputCut = cutOut || cutErr || res.StdoutTruncated || res.StderrTruncated
	out.Hint = execHint(res, info)
	return out
}

// summary is an execution's verdict and figures in one line.
func summary(res *cove.ExecResult) string {
	return fmt.Sprintf("%s · %d ms wall · %d ms CPU · %s peak memory", verdictLine(res), res.WallMS, res.CPUMS, cove.FormatBytes(res.PeakMemoryBytes))
}

// execResult formats a finished execution for the model. fate says what
// becomes of the sandbox.
func (s *Server) execResult(res *cove.ExecResult, sandboxID, fate string, info runInfo) (*mcp.CallToolResult, execOutput) {
	out := s.execOutputOf(res, sandboxID, info)
	var b strings.Builder
	b.WriteString(summary(res) + "\n")
	if sandboxID != "" {
		fmt.Fprintf(&b, "sandbox: %s", sandboxID)
		if fate != "" {
			fmt.Fprintf(&b, " (%s)", fate)
		}
		b.WriteString("\n")
	}
	if res.Message != "" {
		fmt.Fprintf(&b, "message: %s\n", res.Message)
	}
	writeStream(&b, "stdout", out.Stdout, res.StdoutTruncated)
	writeStream(&b, "stderr", out.Stderr, res.StderrTruncated)
	if out.Hint != "" {
		fmt.Fprintf(&b, "hint: %s\n", out.Hint)
	}
	return textResult(b.String()), out
}

// verdictLine says how a program ended in a few words.
func verdictLine(res *cove.ExecResult) string {
	switch res.Verdict {
	case cove.VerdictOK:
		return "ok (exit code 0)"
	case cove.VerdictExitNonzero:
		return fmt.Sprintf("exit code %d", res.ExitCode)
	case cove.VerdictKilled:
		if res.Signal != "" {
			return "killed by " + res.Signal
		}
	}
	return string(res.Verdict)
}

// writeStream writes one output stream under a heading; an empty stream
// is said to be empty so the model does not wonder.
func writeStream(b *strings.Builder, name, text string, limited bool) {
	if text == "" {
		fmt.Fprintf(b, "%s: (empty)\n", name)
		return
	}
	fmt.Fprintf(b, "--- %s", name)
	if limited {
		b.WriteString(" (stopped at the output limit)")
	}
	b.WriteString("\n")
	b.WriteString(text)
	if !strings.HasSuffix(text, "\n") {
		b.WriteString("\n")
	}
}

// execHint says what to change when an execution hit a limit.
func execHint(res *cove.ExecResult, info runInfo) string {
	newSandbox := info.newSandbox
	l := res.Limits
	switch res.Verdict {
	case cove.VerdictOOMKilled:
		mem := "its memory limit"
		if l.MemoryBytes > 0 {
			mem = cove.FormatBytes(l.MemoryBytes)
		}
		if newSandbox {
			return fmt.Sprintf("the program was killed for using more than %s of memory; pass a larger memory_mb or use less memory", mem)
		}
		return fmt.Sprintf("the program was killed for using more than %s of memory; use less memory, or create a sandbox with a larger memory_mb (create_sandbox) and run it there", mem)
	case cove.VerdictTimeout:
		if h := waitedForNetworkHint(res, info); h != "" {
			return h
		}
		limit := "its time limit"
		if l.Timeout > 0 {
			limit = "its time limit of " + l.Timeout.String()
		}
		return fmt.Sprintf("the program was stopped at %s; pass a larger timeout_seconds (up to %d), make it faster, or run long work in the background with start_process", limit, int(cove.MaxTimeout/time.Second))
	case cove.VerdictOutputLimit:
		return fmt.Sprintf("the program was killed for printing more than %s to one stream; print less, or write results to a file and read it with read_file", cove.FormatBytes(l.OutputBytes))
	case cove.VerdictSetupFailed:
		if cwd := info.badCwd; cwd != "" {
			return fmt.Sprintf("the command could not start in cwd %s, which is not a directory of the sandbox: create it first (exec_command with mkdir -p %s, or write_file a file in it), or leave cwd out for /workspace; list_files shows the directories", cwd, cwd)
		}
		if res.Reason == cove.ReasonDiskFull {
			if newSandbox {
				return "the files given do not fit in a fresh sandbox's disk: create a sandbox with a larger disk_mb (create_sandbox), write the files there (write_file) and run the code with its sandbox_id"
			}
			return diskFullHint
		}
		return "the program could not start; check the command, the language and the file names"
	}
	if res.StdoutTruncated || res.StderrTruncated {
		return fmt.Sprintf("the output was cut at %s per stream; print less, or write results to a file and read it with read_file", cove.FormatBytes(l.OutputBytes))
	}
	if h := pipHint(res, newSandbox); h != "" {
		return h
	}
	return networkHint(res, newSandbox)
}

// pipHint says how to install Python packages when pip refused to
// install into the system's Python (PEP 668: the host's Python is
// externally managed, as Debian's and Ubuntu's are), which it does before
// it tries the network.
func pipHint(res *cove.ExecResult, newSandbox bool) string {
	if !lang.PipRefusedSystemInstall(res.Stdout + res.Stderr) {
		return ""
	}
	h := "pip does not install into the system's Python; the packages installed on the host are importable already (try the import first), and others go into a virtual environment: python3 -m venv .venv && .venv/bin/pip install PACKAGE, then run the program with .venv/bin/python"
	switch {
	case res.Limits.HasNetwork():
	case newSandbox:
		h += `; pip also needs network: pass network "pypi.org,files.pythonhosted.org", and install and run in one bash program (the fresh sandbox goes after the run), or create a sandbox with that network (create_sandbox) to keep the environment`
	default:
		h += `; pip also needs network, which this sandbox has not: create a sandbox with network "pypi.org,files.pythonhosted.org" (create_sandbox) and install there`
	}
	return h
}

// networkHint says how to give a program the network it tried to use: to
// a sandbox without a network limit, the network argument; in one whose
// limit left out a host, the proxy's refusal names it. An address the
// proxy refuses whatever the limit (private, reserved, the host's own) is
// for cove's operator to allow.
func networkHint(res *cove.ExecResult, newSandbox bool) string {
	out := res.Stdout + res.Stderr
	if res.Limits.HasNetwork() {
		switch egress.RefusalIn(out) {
		case egress.NotInLimit:
			return fmt.Sprintf("the sandbox may reach only %s; the proxy's refusal (403) names the host it was asked for: use a sandbox whose network includes it", res.Limits.Network)
		case egress.OperatorOnly:
			return "the proxy refused the address the host resolved to (private, reserved or the host's own), which no network argument opens: only cove's operator can allow it (network_private)"
		}
		return ""
	}
	switch {
	case !cove.ReachedNoHost(out):
		return ""
	case newSandbox:
		return `the program could not reach a host: the sandbox has no network; pass network with the hosts it needs (for pip install: "pypi.org,files.pythonhosted.org"), and programs reach them through a proxy cove sets in HTTP_PROXY and HTTPS_PROXY`
	}
	return `the program could not reach a host: the sandbox has no network; create a sandbox with network naming the hosts it needs (create_sandbox; for pip install: "pypi.org,files.pythonhosted.org") and run it there`
}

// seconds turns a number of seconds from a tool's arguments into a
// duration.
func seconds(n float64) time.Duration { return time.Duration(n * float64(time.Second)) }
