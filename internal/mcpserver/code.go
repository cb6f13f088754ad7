package mcpserver

import (
	"context"
	"path"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cove-sandbox/cove"
)

type runCodeInput struct {
	Language       string            `json:"language,omitempty" jsonschema:"the program's language; may be left out with the sandbox_id of a sandbox created with a language"`
	Code           string            `json:"code" jsonschema:"the program's source code"`
	Filename       string            `json:"filename,omitempty" jsonschema:"the name the code is written to in /workspace, such as analysis.py (default main.py, main.js, main.ts or main.sh, by language); a name without the language's extension gets it (analysis becomes analysis.py)"`
	SandboxID      string            `json:"sandbox_id,omitempty" jsonschema:"run in this sandbox's workspace, where files persist; omit to run in a fresh sandbox removed after the run"`
	Files          map[string]string `json:"files,omitempty" jsonschema:"text files to write into the workspace before the program starts, keyed by path relative to /workspace (data, modules, configuration)"`
	Stdin          string            `json:"stdin,omitempty" jsonschema:"the program's standard input"`
	Args           []string          `json:"args,omitempty" jsonschema:"command-line arguments passed to the program"`
	Env            map[string]string `json:"env,omitempty" jsonschema:"environment variables added for the program"`
	TimeoutSeconds float64           `json:"timeout_seconds,omitempty" jsonschema:"wall-clock limit in seconds (default 30, or the sandbox's)"`
	MemoryMB       int64             `json:"memory_mb,omitempty" jsonschema:"memory limit of the fresh sandbox in MiB (default 512); not with sandbox_id, whose limits are set at creation"`
	Network        string            `json:"network,omitempty" jsonschema:"hosts the fresh sandbox may reach over HTTP(S) through cove's proxy, separated by commas, such as pypi.org,files.pythonhosted.org for pip install (default none); not with sandbox_id, whose limits are set at creation"`
	Keep           bool              `json:"keep,omitempty" jsonschema:"without sandbox_id: keep the fresh sandbox after the run and after this MCP session, and return its sandbox_id"`
}

func (s *Server) runCode(ctx context.Context, st *session, in runCodeInput) (*mcp.CallToolResult, execOutput, error) {
	const tool = "run_code"
	if err := s.checkKeep(tool, in.Keep); err != nil {
		return nil, execOutput{}, err
	}
	if in.Language == "" && in.SandboxID == "" {
		return nil, execOutput{}, s.invalid(tool, "no language given: a fresh sandbox needs one (%s); it may be left out only with the sandbox_id of a sandbox created with a language", strings.Join(languageNames(), ", "))
	}
	code := cove.CodeRequest{
		Language: in.Language, Code: in.Code, Filename: in.Filename, Argv: in.Args, Env: in.Env,
		Stdin: []byte(in.Stdin), Timeout: seconds(in.TimeoutSeconds),
	}
	files := make(map[string][]byte, len(in.Files))
	for p, c := range in.Files {
		files[p] = []byte(c)
	}
	if in.SandboxID == "" && !in.Keep {
		stream, err := s.svc.Run(ctx, cove.RunRequest{CodeRequest: code, Limits: cove.Limits{MemoryBytes: in.MemoryMB << 20, Network: in.Network}, Files: files})
		if err != nil {
			return nil, execOutput{}, err
		}
		res, err := cove.Collect(stream)
		if err != nil {
			return nil, execOutput{}, err
		}
		r, out := s.execResult(res, "", "", runInfo{newSandbox: true, command: bashCode(in)})
		return r, out, nil
	}

	id := in.SandboxID
	newSandbox := id == ""
	if newSandbox {
		sb, err := s.svc.CreateSandbox(ctx, cove.SandboxSpec{Language: in.Language, Limits: cove.Limits{MemoryBytes: in.MemoryMB << 20, Network: in.Network}})
		if err != nil {
			return nil, execOutput{}, err
		}
		// The session owns the sandbox, and deletes it when it ends,
		// until the program has run and its id has reached the model.
		if !st.own(ctx, sb.ID, false) {
			return nil, execOutput{}, cove.Errorf(cove.CodeUnavailable, "the MCP session ended while the sandbox was being created")
		}
		id = sb.ID
	} else {
		if in.MemoryMB != 0 {
			return nil, execOutput{}, s.invalid(tool, "memory_mb applies to a fresh sandbox; sandbox %s keeps the limits it was created with (create_sandbox with memory_mb makes one with more)", id)
		}
		if in.Network != "" {
			return nil, execOutput{}, s.invalid(tool, "network applies to a fresh sandbox; sandbox %s keeps the limits it was created with (create_sandbox with network makes one that reaches those hosts)", id)
		}
		if in.Keep {
			return nil, execOutput{}, s.invalid(tool, "keep applies to a fresh sandbox; to keep sandbox %s after this session, create sandboxes with keep: true", id)
		}
	}
	for p, c := range files {
		if _, err := s.svc.WriteFile(ctx, id, p, strings.NewReader(string(c)), 0); err != nil {
			return nil, execOutput{}, err
		}
	}
	stream, err := s.svc.RunCode(ctx, id, code)
	if err != nil {
		return nil, execOutput{}, err
	}
	res, err := cove.Collect(stream)
	if err != nil {
		return nil, execOutput{}, err
	}
	if newSandbox {
		st.own(ctx, id, true)
	} else {
		st.use(id)
	}
	r, out := s.execResult(res, id, st.fate(id), runInfo{newSandbox: newSandbox, command: bashCode(in)})
	return r, out, nil
}

type execCommandInput struct {
	SandboxID      string            `json:"sandbox_id" jsonschema:"the sandbox to run in"`
	Command        string            `json:"command" jsonschema:"the shell command line, run with sh -c"`
	Cwd            string            `json:"cwd,omitempty" jsonschema:"working directory, relative to /workspace (such as src) or absolute (such as /workspace/src); default /workspace"`
	Env            map[string]string `json:"env,omitempty" jsonschema:"environment variables added for the command"`
	Stdin          string            `json:"stdin,omitempty" jsonschema:"the command's standard input"`
	TimeoutSeconds float64           `json:"timeout_seconds,omitempty" jsonschema:"wall-clock limit in seconds (default the sandbox's, 30)"`
}

func (s *Server) execCommand(ctx context.Context, st *session, in execCommandInput) (*mcp.CallToolResult, execOutput, error) {
	if err := s.needCommand("exec_command", in.Command); err != nil {
		return nil, execOutput{}, err
	}
	stream, err := s.svc.Exec(ctx, in.SandboxID, cove.ExecRequest{
		Shell: in.Command, Cwd: in.Cwd, Env: in.Env, Stdin: []byte(in.Stdin), Timeout: seconds(in.TimeoutSeconds),
	})
	if err != nil {
		return nil, execOutput{}, err
	}
	res, err := cove.Collect(stream)
	if err != nil {
		return nil, execOutput{}, err
	}
	st.use(in.SandboxID)
	info := runInfo{command: in.Command}
	if res.Verdict == cove.VerdictSetupFailed && inWorkspace(in.Cwd) && !s.isDir(ctx, in.SandboxID, in.Cwd) {
		info.badCwd = in.Cwd
	}
	r, out := s.execResult(res, in.SandboxID, st.fate(in.SandboxID), info)
	return r, out, nil
}

// inWorkspace reports whether cwd names a directory of the workspace:
// relative to it, or absolute under it. Of others, such as /tmp, list_files
// cannot tell whether they exist.
func inWorkspace(cwd string) bool {
	if cwd == "" {
		return false
	}
	cwd = path.Clean(cwd)
	return !path.IsAbs(cwd) || cwd == "/workspace" || strings.HasPrefix(cwd, "/workspace/")
}

// bashCode is run_code's code when it is a bash program, whose commands
// a hint may name, else "".
func bashCode(in runCodeInput) string {
	if l, ok := canonicalLanguage(in.Language); ok && l == "bash" {
		return in.Code
	}
	return ""
}
