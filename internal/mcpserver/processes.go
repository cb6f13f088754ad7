package mcpserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cove-sandbox/cove"
)

type startProcessInput struct {
	SandboxID      string            `json:"sandbox_id" jsonschema:"the sandbox to run in"`
	Command        string            `json:"command" jsonschema:"the shell command line, run with sh -c, such as \"python3 -m http.server 8000\""`
	Name           string            `json:"name,omitempty" jsonschema:"a name to recognize the process by"`
	Cwd            string            `json:"cwd,omitempty" jsonschema:"working directory, relative to /workspace (such as src) or absolute (such as /workspace/src); default /workspace"`
	Env            map[string]string `json:"env,omitempty" jsonschema:"environment variables added for the process"`
	TimeoutSeconds float64           `json:"timeout_seconds,omitempty" jsonschema:"kill the process after this many seconds (default: never)"`
}

// processOutput describes a background process.
type processOutput struct {
	SandboxID string      `json:"sandbox_id" jsonschema:"the process's sandbox"`
	PID       int         `json:"pid" jsonschema:"the process's id in its sandbox"`
	Name      string      `json:"name,omitempty" jsonschema:"the process's name"`
	State     string      `json:"state" jsonschema:"running or exited"`
	Exit      *exitOutput `json:"exit,omitempty" jsonschema:"how the process ended, once it has"`
}

// exitOutput is how a background process ended: its output is read
// apart (process_logs), so it has none of its own.
type exitOutput struct {
	Verdict         string `json:"verdict" jsonschema:"how the process ended: ok, exit_nonzero, timeout, oom_killed, output_limit, killed or setup_failed"`
	ExitCode        int    `json:"exit_code" jsonschema:"the process's exit status"`
	Signal          string `json:"signal,omitempty" jsonschema:"the signal that ended the process, if any"`
	WallMS          int64  `json:"wall_ms" jsonschema:"wall-clock time in milliseconds"`
	CPUMS           int64  `json:"cpu_ms" jsonschema:"CPU time in milliseconds"`
	PeakMemoryBytes int64  `json:"peak_memory_bytes" jsonschema:"peak memory use in bytes"`
	Message         string `json:"message,omitempty" jsonschema:"why cove stopped the process, when it did"`
	Hint            string `json:"hint,omitempty" jsonschema:"what to change when a limit was hit"`
}

// needCommand refuses an empty command line in the tool's own terms.
func (s *Server) needCommand(tool, command string) error {
	if strings.TrimSpace(command) == "" {
		return s.invalid(tool, "command is empty: give the shell command line to run, such as \"ls -la\"")
	}
	return nil
}

// processExit is how a background process ended, for the model: a
// process stopped at its own timeout gets a hint about that timeout
// rather than about run_code's.
func (s *Server) processExit(res *cove.ExecResult) exitOutput {
	eo := exitOutput{
		Verdict: string(res.Verdict), ExitCode: res.ExitCode, Signal: res.Signal,
		WallMS: res.WallMS, CPUMS: res.CPUMS, PeakMemoryBytes: res.PeakMemoryBytes, Message: res.Message,
		Hint: execHint(res, runInfo{}),
	}
	if res.Verdict == cove.VerdictTimeout {
		limit := "its timeout_seconds"
		if res.Limits.Timeout > 0 {
			limit = fmt.Sprintf("its timeout_seconds of %ss", number(res.Limits.Timeout.Seconds()))
		}
		eo.Hint = fmt.Sprintf("the process was stopped at %s; start it again with start_process with a larger timeout_seconds, or none to let it run until it exits or is killed", limit)
	}
	return eo
}

type listProcessesInput struct {
	SandboxID string `json:"sandbox_id" jsonschema:"the sandbox whose processes to list"`
}

type processEntry struct {
	PID     int         `json:"pid" jsonschema:"the process's id in its sandbox"`
	Name    string      `json:"name,omitempty" jsonschema:"the process's name"`
	State   string      `json:"state" jsonschema:"running or exited"`
	Command string      `json:"command" jsonschema:"the command line the process runs"`
	Exit    *exitOutput `json:"exit,omitempty" jsonschema:"how the process ended, once it has (its output: process_logs)"`
}

type listProcessesOutput struct {
	SandboxID string         `json:"sandbox_id" jsonschema:"the sandbox"`
	Processes []processEntry `json:"processes" jsonschema:"the sandbox's background processes, running and exited"`
}

// commandOf is a process's command line as it was given: the shell line
// of sh -c, else its argv.
func commandOf(argv []string) string {
	if len(argv) == 3 && argv[1] == "-c" && (argv[0] == "/bin/sh" || argv[0] == "sh") {
		return argv[2]
	}
	return strings.Join(argv, " ")
}

func (s *Server) listProcesses(ctx context.Context, st *session, in listProcessesInput) (*mcp.CallToolResult, listProcessesOutput, error) {
	ps, err := s.svc.ListProcesses(ctx, in.SandboxID)
	if err != nil {
		return nil, listProcessesOutput{}, err
	}
	st.use(in.SandboxID)
	out := listProcessesOutput{SandboxID: in.SandboxID, Processes: []processEntry{}}
	var b strings.Builder
	fmt.Fprintf(&b, "background processes of sandbox %s:\n", in.SandboxID)
	if len(ps) == 0 {
		b.WriteString("(none; start_process starts one)\n")
	}
	for _, p := range ps {
		e := processEntry{PID: p.PID, Name: p.Name, State: string(p.State), Command: commandOf(p.Cmd)}
		fmt.Fprintf(&b, "%d", p.PID)
		if p.Name != "" {
			fmt.Fprintf(&b, " (%s)", p.Name)
		}
		if p.State == cove.ProcessRunning {
			fmt.Fprintf(&b, ": running for %s", time.Since(p.StartedAt).Round(time.Second))
		} else {
			b.WriteString(": exited")
			if p.Result != nil {
				eo := s.processExit(p.Result)
				e.Exit = &eo
				b.WriteString(", " + summary(p.Result))
			}
		}
		fmt.Fprintf(&b, ": %s\n", e.Command)
		out.Processes = append(out.Processes, e)
	}
	return textResult(b.String()), out, nil
}

func (s *Server) startProcess(ctx context.Context, st *session, in startProcessInput) (*mcp.CallToolResult, processOutput, error) {
	if err := s.needCommand("start_process", in.Command); err != nil {
		return nil, processOutput{}, err
	}
	p, err := s.svc.StartProcess(ctx, in.SandboxID, cove.ProcessRequest{
		Shell: in.Command, Name: in.Name, Cwd: in.Cwd, Env: in.Env, Timeout: seconds(in.TimeoutSeconds),
	})
	if err != nil {
		return nil, processOutput{}, err
	}
	st.use(in.SandboxID)
	out := processOutput{SandboxID: in.SandboxID, PID: p.PID, Name: p.Name, State: string(p.State)}
	text := fmt.Sprintf("started process %d in sandbox %s: %s\nRead its output with process_logs, wait for it to exit with wait_process, stop it with kill_process.", p.PID, in.SandboxID, in.Command)
	return textResult(text), out, nil
}

type processLogsInput struct {
	SandboxID   string  `json:"sandbox_id" jsonschema:"the process's sandbox"`
	PID         int     `json:"pid" jsonschema:"the process's id, from start_process"`
	WaitSeconds float64 `json:"wait_seconds,omitempty" jsonschema:"wait up to this many seconds for the process to exit before answering (default 0: answer at once)"`
}

type processLogsOutput struct {
	processOutput
	Stdout string `json:"stdout" jsonschema:"what the process printed (long output is cut in the middle)"`
	Stderr string `json:"stderr" jsonschema:"what it wrote to standard error"`
}

func (s *Server) processLogs(ctx context.Context, st *session, in processLogsInput) (*mcp.CallToolResult, processLogsOutput, error) {
	follow := in.WaitSeconds > 0
	logCtx, cancel := ctx, context.CancelFunc(func() {})
	if follow {
		logCtx, cancel = context.WithTimeout(ctx, seconds(in.WaitSeconds))
	}
	defer cancel()
	stream, err := s.svc.ProcessLogs(logCtx, in.SandboxID, in.PID, follow)
	if err != nil {
		return nil, processLogsOutput{}, err
	}
	var stdout, stderr []byte
	var exit *cove.ExecResult
	for exit == nil {
		ev, err := stream.Next()
		if errors.Is(err, io.EOF) || (err != nil && logCtx.Err() != nil && ctx.Err() == nil) {
			// All that is kept was read, or the wait is over.
			break
		}
		if err != nil {
			stream.Close()
			return nil, processLogsOutput{}, err
		}
		switch ev.Type {
		case cove.EventStdout:
			stdout = append(stdout, ev.Data...)
		case cove.EventStderr:
			stderr = append(stderr, ev.Data...)
		case cove.EventExit:
			exit = ev.Result
		}
	}
	stream.Close()
	p, err := s.svc.GetProcess(ctx, in.SandboxID, in.PID)
	if err != nil {
		return nil, processLogsOutput{}, err
	}
	st.use(in.SandboxID)
	if exit == nil {
		exit = p.Result
	}
	out := processLogsOutput{processOutput: processOutput{SandboxID: in.SandboxID, PID: p.PID, Name: p.Name, State: string(p.State)}}
	// A process's output may grow without end: a log file is read in
	// parts.
	const advice = "to read all of a process's output, start it with its output sent to a file (command > out.log 2>&1) and read parts of that with read_file"
	out.Stdout, _ = clipWith(toolNetworkSyntax(string(stdout)), s.opts.MaxOutputChars, advice)
	out.Stderr, _ = clipWith(toolNetworkSyntax(string(stderr)), s.opts.MaxOutputChars, advice)

	var b strings.Builder
	writeProcessHead(&b, in.SandboxID, p)
	if p.State == cove.ProcessRunning {
		fmt.Fprintf(&b, "still running, for %s", time.Since(p.StartedAt).Round(time.Second))
		if follow {
			fmt.Fprintf(&b, " (waited %ss)", number(in.WaitSeconds))
		}
		b.WriteString("\n")
	} else if exit != nil {
		out.Exit = s.writeProcessExit(&b, exit)
	}
	writeStream(&b, "stdout", out.Stdout, false)
	writeStream(&b, "stderr", out.Stderr, false)
	if out.Exit != nil && out.Exit.Hint != "" {
		fmt.Fprintf(&b, "hint: %s\n", out.Exit.Hint)
	}
	return textResult(b.String()), out, nil
}

// writeProcessHead writes the line that names process p of a sandbox and
// its command.
func writeProcessHead(b *strings.Builder, sandboxID string, p *cove.Process) {
	fmt.Fprintf(b, "process %d", p.PID)
	if p.Name != "" {
		fmt.Fprintf(b, " (%s)", p.Name)
	}
	fmt.Fprintf(b, " in sandbox %s: %s\n", sandboxID, commandOf(p.Cmd))
}

// writeProcessExit writes how a background process ended, as
// exec_command's summary says it, and the message when it says more; it
// returns the structured form, whose hint the caller writes last.
func (s *Server) writeProcessExit(b *strings.Builder, res *cove.ExecResult) *exitOutput {
	eo := s.processExit(res)
	b.WriteString("exited: " + summary(res) + "\n")
	if res.Message != "" && res.Message != verdictLine(res) {
		fmt.Fprintf(b, "message: %s\n", res.Message)
	}
	return &eo
}

type waitProcessInput struct {
	SandboxID      string  `json:"sandbox_id" jsonschema:"the process's sandbox"`
	PID            int     `json:"pid" jsonschema:"the process's id, from start_process"`
	TimeoutSeconds float64 `json:"timeout_seconds,omitempty" jsonschema:"wait at most this many seconds for the process to exit"`
}

// Bounds of wait_process's timeout_seconds.
const (
	defaultProcessWait = 30 * time.Second
	maxProcessWait     = 600
)

// waitProcess waits for a process to exit, up to its timeout, and says
// how it ended, or that it still runs.
func (s *Server) waitProcess(ctx context.Context, st *session, in waitProcessInput) (*mcp.CallToolResult, processOutput, error) {
	timeout := seconds(in.TimeoutSeconds)
	if timeout <= 0 {
		timeout = defaultProcessWait
	}
	p, err := cove.WaitProcessFor(ctx, s.svc, in.SandboxID, in.PID, timeout)
	if err != nil {
		return nil, processOutput{}, err
	}
	st.use(in.SandboxID)
	out := processOutput{SandboxID: in.SandboxID, PID: p.PID, Name: p.Name, State: string(p.State)}
	var b strings.Builder
	writeProcessHead(&b, in.SandboxID, p)
	switch {
	case p.State == cove.ProcessRunning:
		fmt.Fprintf(&b, "still running after %ss of waiting (running for %s): call wait_process again to wait longer, or read its output so far with process_logs\n",
			number(timeout.Seconds()), time.Since(p.StartedAt).Round(time.Second))
		return textResult(b.String()), out, nil
	case p.Result != nil:
		out.Exit = s.writeProcessExit(&b, p.Result)
	default:
		b.WriteString("exited\n")
	}
	b.WriteString("output: not shown here; process_logs reads it\n")
	if out.Exit != nil && out.Exit.Hint != "" {
		fmt.Fprintf(&b, "hint: %s\n", out.Exit.Hint)
	}
	return textResult(b.String()), out, nil
}

type killProcessInput struct {
	SandboxID string `json:"sandbox_id" jsonschema:"the process's sandbox"`
	PID       int    `json:"pid" jsonschema:"the process's id, from start_process"`
	Signal    string `json:"signal,omitempty" jsonschema:"the signal to send, by name (SIGTERM, or TERM in any case) or number (15)"`
}

type signalledOutput struct {
	PID    int    `json:"pid" jsonschema:"the process signalled"`
	Signal string `json:"signal" jsonschema:"the signal sent"`
}

// killProcess answers from SignalProcess alone: a process that has
// already exited is a conflict, which says how it ended.
func (s *Server) killProcess(ctx context.Context, st *session, in killProcessInput) (*mcp.CallToolResult, signalledOutput, error) {
	if in.Signal == "" {
		in.Signal = "SIGTERM"
	}
	if err := s.svc.SignalProcess(ctx, in.SandboxID, in.PID, in.Signal); err != nil {
		return nil, signalledOutput{}, err
	}
	st.use(in.SandboxID)
	text := fmt.Sprintf("sent %s to process %d in sandbox %s; process_logs shows whether it has exited", in.Signal, in.PID, in.SandboxID)
	return textResult(text), signalledOutput{PID: in.PID, Signal: in.Signal}, nil
}
