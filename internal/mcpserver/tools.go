package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cove-sandbox/cove"
)

// handler is a tool's implementation: ctx acts for the caller's key and st
// is the calling session's bookkeeping.
type handler[In, Out any] func(ctx context.Context, st *session, in In) (*mcp.CallToolResult, Out, error)

// addTool registers a tool whose input schema is In's, adjusted by tweak
// (enums, defaults, bounds that struct tags cannot say), and whose errors
// become tool results with isError set.
func addTool[In, Out any](s *Server, t *mcp.Tool, tweak func(map[string]*jsonschema.Schema), h handler[In, Out]) {
	schema, err := jsonschema.For[In](nil)
	if err != nil {
		panic(fmt.Sprintf("schema of tool %s: %v", t.Name, err))
	}
	if tweak != nil {
		tweak(schema.Properties)
	}
	t.InputSchema = schema
	s.inputs[t.Name] = schema
	mcp.AddTool(s.mcp, t, func(ctx context.Context, req *mcp.CallToolRequest, in In) (*mcp.CallToolResult, Out, error) {
		ctx = callContext(ctx, req.Extra)
		st := s.sessionOf(req.Session)
		res, out, err := h(ctx, st, in)
		if err != nil {
			var te *toolError
			if !errors.As(err, &te) {
				hint := s.goneHint(ctx, st, err, req.Params.Arguments)
				if hint == "" {
					hint = s.stoppedHint(ctx, err, req.Params.Arguments)
				}
				err = s.failHint(t.Name, err, hint)
			}
			var zero Out
			return nil, zero, err
		}
		return res, out, nil
	})
}

// Schema adjustments.

func enum(values ...string) func(*jsonschema.Schema) {
	return func(p *jsonschema.Schema) {
		for _, v := range values {
			p.Enum = append(p.Enum, v)
		}
	}
}

func byDefault(v any) func(*jsonschema.Schema) {
	return func(p *jsonschema.Schema) {
		b, err := json.Marshal(v)
		if err != nil {
			panic(err)
		}
		p.Default = b
	}
}

func between(lo, hi float64) func(*jsonschema.Schema) {
	return func(p *jsonschema.Schema) { p.Minimum, p.Maximum = &lo, &hi }
}

func atLeast(lo float64) func(*jsonschema.Schema) {
	return func(p *jsonschema.Schema) { p.Minimum = &lo }
}

// adjust applies changes to the named properties.
func adjust(changes map[string][]func(*jsonschema.Schema)) func(map[string]*jsonschema.Schema) {
	return func(props map[string]*jsonschema.Schema) {
		for name, fs := range changes {
			p, ok := props[name]
			if !ok {
				panic("no property " + name)
			}
			for _, f := range fs {
				f(p)
			}
		}
	}
}

// Bounds of tool arguments.
const (
	maxTimeoutSeconds = float64(cove.MaxTimeout / 1e9)
	maxWaitSeconds    = 300
)

func ptr[T any](v T) *T { return &v }

func (s *Server) addTools() {
	readOnly := &mcp.ToolAnnotations{ReadOnlyHint: true, OpenWorldHint: ptr(false)}
	changes := &mcp.ToolAnnotations{DestructiveHint: ptr(false), OpenWorldHint: ptr(false)}
	destroys := &mcp.ToolAnnotations{DestructiveHint: ptr(true), IdempotentHint: true, OpenWorldHint: ptr(false)}
	limits := map[string][]func(*jsonschema.Schema){
		"memory_mb":       {between(8, 1<<20)},
		"cpus":            {between(0.01, cove.MaxCPUs)},
		"disk_mb":         {between(1, 1<<30)},
		"timeout_seconds": {between(0.001, maxTimeoutSeconds)},
	}

	// What keep does, in run_code's and create_sandbox's descriptions
	// and on the argument itself.
	runKeep := "With keep: true that sandbox stays instead, and its sandbox_id comes back for later calls."
	createKeep := "The sandbox is deleted when this MCP session ends, unless keep is true."
	var keepArg []func(*jsonschema.Schema)
	if s.opts.InProcess {
		runKeep = "For a sandbox that stays between calls, use create_sandbox."
		createKeep = "The sandbox lasts as long as this MCP session: sandboxes run in this MCP server's own process, which deletes them when the session ends (keep is not available)."
		keepArg = []func(*jsonschema.Schema){func(p *jsonschema.Schema) {
			p.Description = "not available here: sandboxes run in this MCP server's own process and end with it (cove mcp connected to a cove server, through COVE_URL, keeps them)"
		}}
	}

	runCode := adjust(map[string][]func(*jsonschema.Schema){
		"language":        {languages(languageNames()...)},
		"timeout_seconds": limits["timeout_seconds"],
		"memory_mb":       limits["memory_mb"],
		"keep":            keepArg,
	})
	addTool(s, &mcp.Tool{
		Name:  "run_code",
		Title: "Run code in a sandbox",
		Description: `Run a program and get its stdout, stderr, exit code and verdict (ok, exit_nonzero, timeout, oom_killed, output_limit, killed).

Without sandbox_id, it runs in a fresh isolated sandbox that is removed right after the run: nothing persists between calls, so put everything the program needs in code and files. ` + runKeep + ` With sandbox_id, it runs in that sandbox's /workspace (see create_sandbox), where files persist; language may then be left out if the sandbox was created with one.

The code is written to a file in /workspace and stays there after the run: main.py, main.js, main.ts or main.sh by language, or the name given as filename, with the language's extension added when it has none. A file of yours with that name is not overwritten: the call fails, and another filename avoids it.

Languages: python (CPython 3), javascript (Node.js), typescript (compiled to JavaScript, without type checking), bash. Packages installed on the host are importable. The sandbox reaches no host unless it is made with network (such as pypi.org,files.pythonhosted.org for pip install, in a virtual environment: python3 -m venv .venv). Default limits (unless the server is configured otherwise): 512 MiB memory, 1 CPU, 30 s, 1 MiB of output per stream; memory_mb and timeout_seconds raise them. A failing program is a result, not an error: read the verdict and stderr.

For state kept between snippets (variables, imports, charts), use run_in_context; for servers and long jobs, start_process.`,
		Annotations: changes,
	}, runCode, s.runCode)

	addTool(s, &mcp.Tool{
		Name:  "create_sandbox",
		Title: "Create a sandbox",
		Description: `Create a sandbox: an isolated Linux machine with a workspace (/workspace, the working directory) whose files persist between calls. Returns its sandbox_id, to pass to run_code, exec_command, run_in_context, start_process and the file tools.

Use one for multi-step work: write files, run them, read results. Create several to work in parallel; each is independent. Limits are fixed at creation (defaults unless the server says otherwise: 512 MiB memory, 1 CPU, 1 GiB disk, 30 s per execution). It reaches no host unless network names some, such as pypi.org,files.pythonhosted.org for pip install.

` + createKeep + ` A server may stop sandboxes that stay idle; start_sandbox brings one back with its files.`,
		Annotations: changes,
	}, adjust(map[string][]func(*jsonschema.Schema){
		"language":             {languages(languageNames()...)},
		"memory_mb":            limits["memory_mb"],
		"cpus":                 limits["cpus"],
		"disk_mb":              limits["disk_mb"],
		"timeout_seconds":      limits["timeout_seconds"],
		"idle_timeout_seconds": {between(1, maxTimeoutSeconds)},
		"ttl_seconds":          {between(1, 365*maxTimeoutSeconds)},
		"keep":                 keepArg,
	}), s.createSandbox)

	addTool(s, &mcp.Tool{
		Name:        "list_sandboxes",
		Title:       "List sandboxes",
		Description: "List your sandboxes, newest first (up to 100): id, state (starting, running, stopping, stopped or error), language, limits, labels, and whether this session created it and deletes it when it ends.",
		Annotations: readOnly,
	}, adjust(map[string][]func(*jsonschema.Schema){
		"state": {enum(string(cove.StateRunning), string(cove.StateStarting), string(cove.StateStopping), string(cove.StateStopped), string(cove.StateError))},
	}), s.listSandboxes)

	addTool(s, &mcp.Tool{
		Name:        "start_sandbox",
		Title:       "Start a stopped sandbox",
		Description: "Start a sandbox that was stopped (after being idle, or by a server restart) so that code can run in it again. Its files are as they were; running processes and contexts are not. Starting a running sandbox does nothing.",
		Annotations: &mcp.ToolAnnotations{DestructiveHint: ptr(false), IdempotentHint: true, OpenWorldHint: ptr(false)},
	}, nil, s.startSandbox)

	addTool(s, &mcp.Tool{
		Name:        "delete_sandbox",
		Title:       "Delete a sandbox",
		Description: "Delete a sandbox with its files, processes and contexts. It cannot be undone.",
		Annotations: destroys,
	}, nil, s.deleteSandbox)

	addTool(s, &mcp.Tool{
		Name:  "run_in_context",
		Title: "Run code statefully (notebook-like)",
		Description: `Run a cell of Python, JavaScript or TypeScript in a live interpreter: variables, imports, functions and open files persist from one call to the next, as in a Jupyter notebook. The value of the last expression comes back as the result; charts (matplotlib figures, display calls) come back as images; an exception comes back with its traceback and verdict error. A cell that raises or hits a limit is a result, not a failed call: read its verdict.

Without context_id, the cell runs in this session's context for the language, created on first use (in sandbox_id if given, else in a sandbox this session creates). The result names the sandbox_id and context_id; pass context_id to run in a specific context. The sandbox's files are shared with run_code and the file tools.

A context runs one cell at a time: a call sent while another call's cell runs in the same context fails (conflict). Cancelling a call interrupts its cell. For work in parallel, use run_code, or contexts in other sandboxes (sandbox_id).

A cell past its time limit (timeout_seconds, default the sandbox's, 30 s) is interrupted, and killed if it does not stop; a killed cell, or one past the memory limit, restarts the context, losing its state (the result's message says so).`,
		Annotations: changes,
	}, adjust(map[string][]func(*jsonschema.Schema){
		"language":        {languages(contextLanguages()...), byDefault("python")},
		"timeout_seconds": limits["timeout_seconds"],
	}), s.runInContext)

	addTool(s, &mcp.Tool{
		Name:        "exec_command",
		Title:       "Run a shell command in a sandbox",
		Description: `Run a shell command (sh -c) in a sandbox's /workspace and get its stdout, stderr, exit code and verdict: ls, cat, grep, python3 script.py, node app.js, a build or a test run. It waits for the command to finish (default limit 30 s; timeout_seconds raises it). For a server or anything that runs on, use start_process.`,
		Annotations: changes,
	}, adjust(map[string][]func(*jsonschema.Schema){
		"timeout_seconds": limits["timeout_seconds"],
	}), s.execCommand)

	addTool(s, &mcp.Tool{
		Name:        "start_process",
		Title:       "Start a background process",
		Description: `Start a long-running command in a sandbox in the background (a web server, a watcher, a long computation) and return its pid at once. Read its output with process_logs, wait for it to finish with wait_process, stop it with kill_process. Servers listen on the sandbox's own loopback: reach them from the same sandbox (for example exec_command with curl or python3 -c). The process runs until it exits, is killed, the sandbox stops, or timeout_seconds passes (default: no limit).`,
		Annotations: changes,
	}, adjust(map[string][]func(*jsonschema.Schema){
		"timeout_seconds": {between(0.001, maxTimeoutSeconds)},
	}), s.startProcess)

	addTool(s, &mcp.Tool{
		Name:        "process_logs",
		Title:       "Read a background process's output",
		Description: "Read what a background process (start_process) has printed so far, and whether it is still running or how it exited. With wait_seconds, wait up to that long for the process to exit first (useful to let a server start or a job finish).",
		Annotations: readOnly,
	}, adjust(map[string][]func(*jsonschema.Schema){
		"wait_seconds": {between(0, maxWaitSeconds)},
	}), s.processLogs)

	addTool(s, &mcp.Tool{
		Name:        "wait_process",
		Title:       "Wait for a background process to finish",
		Description: "Wait for a background process (start_process) to exit, up to timeout_seconds (default 30, at most 600), and get how it ended: verdict, exit code, times and memory, as exec_command reports them, without its output (process_logs reads that). If it is still running when the time is up, the answer says so: call wait_process again, or read its output so far with process_logs.",
		Annotations: readOnly,
	}, adjust(map[string][]func(*jsonschema.Schema){
		"timeout_seconds": {between(0.001, maxProcessWait), byDefault(defaultProcessWait.Seconds())},
	}), s.waitProcess)

	addTool(s, &mcp.Tool{
		Name:        "list_processes",
		Title:       "List a sandbox's background processes",
		Description: "List the background processes (start_process) of a sandbox, running and exited: pid, name, state, command and, for those that exited, how they ended. Use it to find a pid again.",
		Annotations: readOnly,
	}, nil, s.listProcesses)

	addTool(s, &mcp.Tool{
		Name:        "kill_process",
		Title:       "Stop a background process",
		Description: "Send a signal to a background process and its children (default SIGTERM, which asks it to stop; SIGKILL forces it). A process that has already exited is not signalled: that is an error (conflict) that says how it ended.",
		Annotations: destroys,
	}, adjust(map[string][]func(*jsonschema.Schema){
		"signal": {enum("SIGTERM", "SIGKILL", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2"), byDefault("SIGTERM")},
	}), s.killProcess)

	addTool(s, &mcp.Tool{
		Name:        "write_file",
		Title:       "Write a file into a sandbox",
		Description: "Write a file into a sandbox's workspace, creating parent directories and replacing what was there. Paths are relative to /workspace (or absolute under it). Text by default; set base64 for binary content.",
		Annotations: &mcp.ToolAnnotations{DestructiveHint: ptr(true), IdempotentHint: true, OpenWorldHint: ptr(false)},
	}, nil, s.writeFile)

	addTool(s, &mcp.Tool{
		Name:        "read_file",
		Title:       "Read a file from a sandbox",
		Description: "Read a file from a sandbox's workspace. Text comes back as text, images (PNG, JPEG, GIF, WebP) as images, other binary files as base64. Long files come back in parts: max_bytes (default 40000, at most 65536 a call) from offset, a text part ending with a whole line when it holds one; the result says where the next part starts.",
		Annotations: readOnly,
	}, adjust(map[string][]func(*jsonschema.Schema){
		"offset":    {atLeast(0)},
		"max_bytes": {atLeast(1), byDefault(defaultReadBytes)},
	}), s.readFile)

	addTool(s, &mcp.Tool{
		Name:        "list_files",
		Title:       "List files in a sandbox",
		Description: "List a directory of a sandbox's workspace (default the workspace itself), with sizes; recursive lists the whole tree, up to 1000 entries (the upper levels first when there are more; the result names the directories that hold the rest). A recursive listing counts the contents of directories of dependencies, caches and version control (" + collapsedNames + ") on their own line rather than listing them.",
		Annotations: readOnly,
	}, nil, s.listFiles)

	addTool(s, &mcp.Tool{
		Name:        "delete_file",
		Title:       "Delete a file from a sandbox",
		Description: "Delete a file, or a directory with recursive, from a sandbox's workspace. Deleting what does not exist is a not_found error.",
		Annotations: destroys,
	}, nil, s.deleteFile)
}
