package mcpserver

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cove-sandbox/cove"
)

type runInContextInput struct {
	Code           string  `json:"code" jsonschema:"the cell's code; the value of its last expression is returned"`
	Language       string  `json:"language,omitempty" jsonschema:"the interpreter's language"`
	SandboxID      string  `json:"sandbox_id,omitempty" jsonschema:"run in a context in this sandbox (default: a sandbox this session creates for its contexts)"`
	ContextID      string  `json:"context_id,omitempty" jsonschema:"run in this context (from an earlier result); default: this session's context for the language"`
	TimeoutSeconds float64 `json:"timeout_seconds,omitempty" jsonschema:"time limit of the cell in seconds (default the sandbox's, 30)"`
}

type exceptionOutput struct {
	Name      string   `json:"name" jsonschema:"the exception's class, such as ZeroDivisionError"`
	Message   string   `json:"message" jsonschema:"the exception's message"`
	Traceback []string `json:"traceback,omitempty" jsonschema:"the traceback, pointing at lines of the cell"`
	Line      int      `json:"line,omitempty" jsonschema:"the line of the cell that raised it"`
}

type cellOutput struct {
	SandboxID  string           `json:"sandbox_id" jsonschema:"the sandbox of the context"`
	ContextID  string           `json:"context_id" jsonschema:"the context the cell ran in"`
	Language   string           `json:"language" jsonschema:"the context's language"`
	NewContext bool             `json:"new_context,omitempty" jsonschema:"the context was created for this cell: nothing defined earlier exists in it"`
	Verdict    string           `json:"verdict" jsonschema:"ok, error (an exception), timeout, oom_killed, output_limit or killed"`
	Stdout     string           `json:"stdout" jsonschema:"what the cell printed"`
	Stderr     string           `json:"stderr" jsonschema:"what the cell wrote to standard error"`
	Result     string           `json:"result,omitempty" jsonschema:"the value of the last expression, as text (an image value comes as image content too)"`
	Displays   []string         `json:"displays,omitempty" jsonschema:"text of displayed outputs (images come as image content)"`
	Images     int              `json:"images,omitempty" jsonschema:"how many images (charts) the cell displayed or returned as its result"`
	Exception  *exceptionOutput `json:"exception,omitempty" jsonschema:"the exception the cell raised"`
	Message    string           `json:"message,omitempty" jsonschema:"what happened to the context, when a limit stopped the cell"`
	Hint       string           `json:"hint,omitempty" jsonschema:"what to change when a limit was hit"`
}

// busyContextHint is the hint of a cell sent to a context that is
// running another call's cell.
const busyContextHint = "a context runs one cell at a time: wait for the call that is running a cell there to return, or cancel that call (notifications/cancelled), which interrupts its cell, and call again a moment later; for work in parallel, use run_code, or run_in_context with the sandbox_id of another sandbox (each sandbox has its own contexts)"

// isRunning reports whether a sandbox is running, to tell a conflict a
// stopped sandbox explains from others.
func (s *Server) isRunning(ctx context.Context, sandboxID string) bool {
	sb, err := s.svc.GetSandbox(ctx, sandboxID)
	return err == nil && sb.State == cove.StateRunning
}

// imageTypes are the MIME types of display data sent as MCP images.
var imageTypes = []string{"image/png", "image/jpeg", "image/gif", "image/webp"}

func (s *Server) runInContext(ctx context.Context, st *session, in runInContextInput) (*mcp.CallToolResult, cellOutput, error) {
	given := in.Language
	if in.Language == "" {
		in.Language = "python"
	}
	for attempt := 0; ; attempt++ {
		sandboxID, c, created, cached, err := s.contextFor(ctx, st, in)
		if err != nil {
			return nil, cellOutput{}, err
		}
		if given != "" && c.Language != given {
			// A context named by its id runs its own language: the
			// cell was written for another.
			return nil, cellOutput{}, s.invalid("run_in_context", "context %s runs %s, not %s: leave language out to run the cell there, or leave context_id out to run it in this session's %s context", c.ID, c.Language, given, given)
		}
		stream, err := s.svc.RunCell(ctx, sandboxID, c.ID, cove.CellRequest{Code: in.Code, Timeout: seconds(in.TimeoutSeconds)})
		if cove.ErrorCode(err) == cove.CodeNotFound && cached && attempt == 0 {
			// The session's context (or its sandbox) is gone, deleted
			// by hand or with its sandbox: make a new one.
			st.dropContext(sandboxID, c.ID)
			continue
		}
		if cove.ErrorCode(err) == cove.CodeConflict && s.isRunning(ctx, sandboxID) {
			// The context is busy with another call's cell (a stopped
			// sandbox is the other conflict, which its own hint says).
			return nil, cellOutput{}, s.failHint("run_in_context", err, busyContextHint)
		}
		if err != nil {
			return nil, cellOutput{}, err
		}
		out := cellOutput{SandboxID: sandboxID, ContextID: c.ID, Language: c.Language, NewContext: created}
		r, err := s.cellResult(ctx, stream, &out)
		if err != nil {
			return nil, cellOutput{}, err
		}
		return r, out, nil
	}
}

// contextFor returns the sandbox and context a cell runs in: the one
// named, or the session's for the sandbox and language, made on first
// use. created says the context is new; cached that it is the session's.
func (s *Server) contextFor(ctx context.Context, st *session, in runInContextInput) (sandboxID string, c *cove.Context, created, cached bool, err error) {
	if in.ContextID != "" {
		sandboxID = in.SandboxID
		if sandboxID == "" {
			sandboxID = st.sandboxOfContext(in.ContextID)
		}
		if sandboxID == "" {
			return "", nil, false, false, s.failHint("run_in_context", cove.Errorf(cove.CodeNotFound, "this session made no context %s", in.ContextID),
				"if another session made it, give its sandbox_id too; otherwise leave context_id out: the cell then runs in this session's context for the language, which the first such call creates")
		}
		c, err = s.svc.GetContext(ctx, sandboxID, in.ContextID)
		if err != nil {
			return "", nil, false, false, err
		}
		st.use(sandboxID)
		return sandboxID, c, false, false, nil
	}
	// One call at a time sets up the session's sandbox and contexts, so
	// that parallel cells share them rather than each making its own.
	st.setup.Lock()
	defer st.setup.Unlock()
	sandboxID = in.SandboxID
	if sandboxID == "" {
		sandboxID = st.scratchSandbox()
	}
	if sandboxID == "" {
		sb, err := s.svc.CreateSandbox(ctx, cove.SandboxSpec{Language: in.Language, Labels: map[string]string{"purpose": "contexts"}})
		if err != nil {
			return "", nil, false, false, err
		}
		if !st.own(ctx, sb.ID, false) {
			return "", nil, false, false, cove.Errorf(cove.CodeUnavailable, "the MCP session ended while the sandbox was being created")
		}
		st.setScratch(sb.ID)
		sandboxID = sb.ID
	}
	if id := st.contextOf(sandboxID, in.Language); id != "" {
		return sandboxID, &cove.Context{ID: id, SandboxID: sandboxID, Language: in.Language}, false, true, nil
	}
	c, err = s.svc.CreateContext(ctx, sandboxID, cove.ContextSpec{Language: in.Language})
	if cove.ErrorCode(err) == cove.CodeNotFound && in.SandboxID == "" {
		// The session's sandbox for contexts is gone: make another.
		st.forget(sandboxID)
		sb, err2 := s.svc.CreateSandbox(ctx, cove.SandboxSpec{Language: in.Language, Labels: map[string]string{"purpose": "contexts"}})
		if err2 != nil {
			return "", nil, false, false, err2
		}
		st.own(ctx, sb.ID, false)
		st.setScratch(sb.ID)
		sandboxID = sb.ID
		c, err = s.svc.CreateContext(ctx, sandboxID, cove.ContextSpec{Language: in.Language})
	}
	if err != nil {
		return "", nil, false, false, err
	}
	if !st.addContext(ctx, sandboxID, in.Language, c.ID) {
		return "", nil, false, false, cove.Errorf(cove.CodeUnavailable, "the MCP session ended while the context was being created")
	}
	return sandboxID, c, true, true, nil
}

// cellResult drains a cell's events into the model's result: a text of
// outputs, the result and any exception, then the images it displayed.
func (s *Server) cellResult(ctx context.Context, stream cove.Stream, out *cellOutput) (*mcp.CallToolResult, error) {
	defer stream.Close()
	var stdout, stderr []byte
	var images []mcp.Content
	var res *cove.ExecResult
	for res == nil {
		ev, err := stream.Next()
		if errors.Is(err, io.EOF) {
			return nil, cove.Errorf(cove.CodeInternal, "the cell's stream ended without a result")
		}
		if err != nil {
			return nil, err
		}
		switch ev.Type {
		case cove.EventStdout:
			stdout = append(stdout, ev.Data...)
		case cove.EventStderr:
			stderr = append(stderr, ev.Data...)
		case cove.EventResult:
			// A value that is an image (a matplotlib Figure as the last
			// line) comes back as one, as a displayed image does.
			out.Result = bundleText(ev.Bundle)
			if img := bundleImage(ev.Bundle); img != nil {
				images = append(images, img)
				out.Images++
				if out.Result != "" {
					out.Result += " (image attached)"
				}
			}
		case cove.EventDisplay:
			if img := bundleImage(ev.Bundle); img != nil {
				images = append(images, img)
				out.Images++
				if t := ev.Bundle["text/plain"]; t != "" {
					out.Displays = append(out.Displays, t+" (image attached)")
				}
			} else if t := bundleText(ev.Bundle); t != "" {
				out.Displays = append(out.Displays, t)
			}
		case cove.EventException:
			if e := ev.Exception; e != nil {
				tb := make([]string, len(e.Traceback))
				for i, f := range e.Traceback {
					tb[i] = toolNetworkSyntax(f)
				}
				out.Exception = &exceptionOutput{Name: e.Name, Message: toolNetworkSyntax(e.Message), Traceback: tb, Line: e.Line}
			}
		case cove.EventExit:
			res = ev.Result
		}
	}
	out.Verdict = string(res.Verdict)
	out.Message = res.Message
	var cut bool
	out.Stdout, cut = clip(toolNetworkSyntax(string(stdout)), s.opts.MaxOutputChars)
	out.Stderr, _ = clip(toolNetworkSyntax(string(stderr)), s.opts.MaxOutputChars)
	out.Result, _ = clip(out.Result, s.opts.MaxOutputChars)
	if res.Verdict != cove.VerdictError && res.Verdict != cove.VerdictOK {
		out.Hint = cellHint(res, s.restarted(ctx, out.SandboxID, out.ContextID))
	} else if cut || res.StdoutTruncated || res.StderrTruncated {
		out.Hint = "the output was long and was cut; print less, or write results to a file and read it with read_file"
	}

	var b strings.Builder
	fmt.Fprintf(&b, "%s context %s in sandbox %s", out.Language, out.ContextID, out.SandboxID)
	if out.NewContext {
		b.WriteString(" (new context: nothing from earlier cells is defined)")
	}
	b.WriteString("\n")
	if len(stdout) > 0 {
		writeStream(&b, "stdout", out.Stdout, res.StdoutTruncated)
	}
	if len(stderr) > 0 {
		writeStream(&b, "stderr", out.Stderr, res.StderrTruncated)
	}
	for _, d := range out.Displays {
		writeValue(&b, "display", d)
	}
	if out.Result != "" {
		writeValue(&b, "result", out.Result)
	}
	if e := out.Exception; e != nil {
		b.WriteString("exception: " + e.Name)
		if e.Message != "" {
			b.WriteString(": " + e.Message)
		}
		if e.Line > 0 {
			fmt.Fprintf(&b, " (line %d of the cell)", e.Line)
		}
		b.WriteString("\n")
		for _, frame := range e.Traceback {
			if frame = strings.Trim(frame, "\n"); frame != "" {
				b.WriteString(frame + "\n")
			}
		}
	}
	if res.Verdict != cove.VerdictOK {
		fmt.Fprintf(&b, "verdict: %s\n", res.Verdict)
	}
	if out.Message != "" {
		fmt.Fprintf(&b, "message: %s\n", out.Message)
	}
	if out.Hint != "" {
		fmt.Fprintf(&b, "hint: %s\n", out.Hint)
	}
	if len(stdout) == 0 && len(stderr) == 0 && out.Result == "" && len(out.Displays) == 0 && out.Exception == nil && res.Verdict == cove.VerdictOK {
		b.WriteString("ok (no output)\n")
	}
	// A cell that raised or hit a limit is a result, as a failing program
	// of run_code is: isError is for calls that did not run the cell.
	return &mcp.CallToolResult{Content: append([]mcp.Content{&mcp.TextContent{Text: b.String()}}, images...)}, nil
}

// writeValue writes a labelled value on its line, or below the label
// when it spans lines (a table).
func writeValue(b *strings.Builder, label, v string) {
	if strings.Contains(v, "\n") {
		fmt.Fprintf(b, "%s:\n%s\n", label, strings.TrimRight(v, "\n"))
		return
	}
	fmt.Fprintf(b, "%s: %s\n", label, v)
}

// contextState says whether a context kept its state after a cell that
// a limit stopped.
type contextState int

const (
	stateUnknown contextState = iota
	stateKept
	stateLost
)

// restarted asks whether the context restarted after its last cell: a
// restart counts the cells run from zero again, and the cell that ended
// the interpreter is not counted.
func (s *Server) restarted(ctx context.Context, sandboxID, contextID string) contextState {
	c, err := s.svc.GetContext(ctx, sandboxID, contextID)
	switch {
	case err != nil:
		return stateUnknown
	case c.Runs == 0:
		return stateLost
	}
	return stateKept
}

// cellHint says what to do when a limit stopped a cell, and whether the
// context kept its state.
func cellHint(res *cove.ExecResult, state contextState) string {
	var kept string
	switch state {
	case stateKept:
		kept = "the context kept its variables and imports"
	case stateLost:
		kept = "the context was restarted and lost its state: re-run the cells that defined what you need"
	default:
		kept = "the context keeps its variables and imports unless the message says it was restarted"
	}
	switch res.Verdict {
	case cove.VerdictTimeout:
		return "the cell ran past its time limit; " + kept + "; pass a larger timeout_seconds, do less per cell, or use start_process for long work"
	case cove.VerdictOOMKilled:
		return fmt.Sprintf("the cell used more than %s of memory; %s; use less memory, or run in a sandbox created with a larger memory_mb (create_sandbox, then sandbox_id here)", cove.FormatBytes(res.Limits.MemoryBytes), kept)
	case cove.VerdictOutputLimit:
		return "the cell printed more than the output limit and was stopped; " + kept + "; print less, or write results to a file and read it with read_file"
	}
	if state == stateLost {
		return "the interpreter ended; " + kept
	}
	return ""
}

// bundleText is the text of a MIME bundle: text/plain, else another
// text type.
func bundleText(b cove.MIMEBundle) string {
	if t, ok := b["text/plain"]; ok {
		return t
	}
	for _, k := range slices.Sorted(maps.Keys(b)) {
		if strings.HasPrefix(k, "text/") || k == "application/json" {
			return b[k]
		}
	}
	return ""
}

// bundleImage is the image of a MIME bundle as MCP image content, or nil.
func bundleImage(b cove.MIMEBundle) mcp.Content {
	for _, t := range imageTypes {
		if data, ok := b[t]; ok {
			raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(data))
			if err != nil {
				continue
			}
			return &mcp.ImageContent{MIMEType: t, Data: raw}
		}
	}
	return nil
}

// Session bookkeeping of contexts.

func (st *session) sandboxOfContext(id string) string {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.contextSandbox[id]
}

func (st *session) contextOf(sandboxID, language string) string {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.contexts[contextKey{sandboxID, language}]
}

// addContext records a context the session created, to be deleted when
// the session ends. When the session has already ended, the context is
// deleted at once and addContext reports false.
func (st *session) addContext(ctx context.Context, sandboxID, language, id string) bool {
	st.mu.Lock()
	if st.ended {
		st.mu.Unlock()
		st.srv.deleteContext(context.WithoutCancel(ctx), sandboxID, id)
		return false
	}
	defer st.mu.Unlock()
	st.contexts[contextKey{sandboxID, language}] = id
	st.contextSandbox[id] = sandboxID
	st.contextCtx[id] = context.WithoutCancel(ctx)
	st.used[sandboxID] = true
	return true
}

func (st *session) dropContext(sandboxID, id string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	for k, c := range st.contexts {
		if c == id {
			delete(st.contexts, k)
		}
	}
	delete(st.contextSandbox, id)
	delete(st.contextCtx, id)
}

func (st *session) scratchSandbox() string {
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.scratch
}

func (st *session) setScratch(id string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.scratch = id
}
