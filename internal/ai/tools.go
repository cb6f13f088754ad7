package ai

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/anthropics/anthropic-sdk-go"

	"github.com/cove-sandbox/cove"
)

// loopTools are the tools of the fix loop, each bound to its sandbox.
func loopTools() []anthropic.ToolUnionParam {
	str := func(desc string) map[string]any { return map[string]any{"type": "string", "description": desc} }
	return []anthropic.ToolUnionParam{
		tool(cove.AIToolRunCode, "Write a complete program to the program's file in /workspace and run it in the sandbox (and then the test command, if there is one, after putting the program's other files back as they were given). Returns the verdict, the exit code and the output. The fix is done when this gives verdict ok.",
			map[string]any{
				"code":  str("The complete program: the whole file, runnable as is, never a diff or an excerpt."),
				"stdin": str("Standard input for the program (optional)."),
			}, "code"),
		tool(cove.AIToolRunCommand, "Run a shell command (/bin/sh -c) in /workspace in the sandbox. Returns the verdict, the exit code and the output.",
			map[string]any{"command": str("The command, such as `ls -la` or `python3 -c 'import sys; print(sys.version)'`.")}, "command"),
		tool(cove.AIToolWriteFile, "Write a file in the sandbox's workspace, creating its directories.",
			map[string]any{
				"path":    str("The path, relative to /workspace (or absolute under it)."),
				"content": str("The whole content of the file."),
			}, "path", "content"),
		tool(cove.AIToolReadFile, "Read a file of the sandbox's workspace (long files are trimmed to their head and tail).",
			map[string]any{"path": str("The path, relative to /workspace (or absolute under it).")}, "path"),
	}
}

// loopEnv is the environment of the loop's runs. Python writes no
// bytecode cache: a module rewritten within the same second at the same
// size (a - b fixed to a + b) would otherwise be imported stale.
var loopEnv = map[string]string{"PYTHONDONTWRITEBYTECODE": "1"}

// toolFailure is a tool call that cove could not carry out as asked: it
// goes back to Claude as an error result, not to the user as an error.
type toolFailure struct{ msg string }

func (f *toolFailure) Error() string { return f.msg }

// execute runs one tool call in the sandbox and returns its step and
// whether it verified the code. err is set only when the loop cannot go
// on (the context ended, the service failed); what Claude asked wrongly
// comes back in the step as an error result.
func (l *loop) execute(ctx context.Context, call anthropic.ContentBlockUnion) (step cove.AIStep, verified bool, err error) {
	step = cove.AIStep{Tool: call.Name, Input: append(json.RawMessage(nil), call.Input...)}
	if len(step.Input) == 0 {
		step.Input = json.RawMessage("{}")
	}
	out, run, verified, err := l.dispatch(ctx, call.Name, call.Input)
	if err != nil {
		var tf *toolFailure
		var ce *cove.Error
		switch {
		case ctx.Err() != nil:
			return step, false, ctx.Err()
		case errors.As(err, &tf):
			out = tf.msg
		case errors.As(err, &ce) && ce.Code != cove.CodeInternal && ce.Code != cove.CodeUnavailable:
			// The service refused the call (a bad path, a missing file):
			// Claude can correct it.
			out = "error: " + ce.Message
		default:
			return step, false, err
		}
		step.Output, step.IsError = out, true
		return step, false, nil
	}
	step.Output, step.Run = out, run
	switch call.Name {
	case cove.AIToolRunCode:
		step.IsError = !verified
	case cove.AIToolRunCommand:
		step.IsError = run.Verdict != cove.VerdictOK
	}
	return step, verified, nil
}

// dispatch carries out a call of the named tool.
func (l *loop) dispatch(ctx context.Context, name string, input json.RawMessage) (out string, run *cove.ExecResult, verified bool, err error) {
	budget := l.a.opts.OutputBudget
	switch name {
	case cove.AIToolRunCode:
		var in struct {
			Code  string  `json:"code"`
			Stdin *string `json:"stdin"`
		}
		if err := decodeInput(name, input, &in); err != nil {
			return "", nil, false, err
		}
		if strings.TrimSpace(in.Code) == "" {
			return "", nil, false, &toolFailure{"run_code needs code: the complete program"}
		}
		cr := cove.CodeRequest{Language: l.req.Language, Code: in.Code, Filename: l.req.Filename, Env: loopEnv}
		if in.Stdin != nil {
			cr.Stdin = []byte(*in.Stdin)
		}
		st, err := l.svc.RunCode(ctx, l.sbID, cr)
		if err != nil {
			return "", nil, false, err
		}
		res, err := cove.Collect(st)
		if err != nil {
			return "", nil, false, err
		}
		l.code, l.run, l.testRun = in.Code, res, nil
		out = describeRun("The program", res, budget)
		ok := res.Verdict == cove.VerdictOK
		if ok && l.req.Test != "" {
			restored, err := l.restoreFiles(ctx)
			if err != nil {
				return "", nil, false, err
			}
			if len(restored) > 0 {
				out += fmt.Sprintf("\n\ncove put back %s as given before the test: the program's other files are not yours to change.", strings.Join(restored, ", "))
			}
			tst, err := l.svc.Exec(ctx, l.sbID, cove.ExecRequest{Shell: l.req.Test, Env: loopEnv})
			if err != nil {
				return "", nil, false, err
			}
			tres, err := cove.Collect(tst)
			if err != nil {
				return "", nil, false, err
			}
			l.testRun = tres
			out += "\n\n" + describeRun(testHeading+l.req.Test+"`", tres, budget)
			ok = tres.Verdict == cove.VerdictOK
		}
		return out, trimmedRun(res, budget), ok, nil

	case cove.AIToolRunCommand:
		var in struct {
			Command string `json:"command"`
		}
		if err := decodeInput(name, input, &in); err != nil {
			return "", nil, false, err
		}
		if strings.TrimSpace(in.Command) == "" {
			return "", nil, false, &toolFailure{"run_command needs a command"}
		}
		st, err := l.svc.Exec(ctx, l.sbID, cove.ExecRequest{Shell: in.Command, Env: loopEnv})
		if err != nil {
			return "", nil, false, err
		}
		res, err := cove.Collect(st)
		if err != nil {
			return "", nil, false, err
		}
		return describeRun("The command", res, budget), trimmedRun(res, budget), false, nil

	case cove.AIToolWriteFile:
		var in struct {
			Path    string  `json:"path"`
			Content *string `json:"content"`
		}
		if err := decodeInput(name, input, &in); err != nil {
			return "", nil, false, err
		}
		if in.Path == "" || in.Content == nil {
			return "", nil, false, &toolFailure{"write_file needs a path and the content"}
		}
		fi, err := l.svc.WriteFile(ctx, l.sbID, in.Path, strings.NewReader(*in.Content), 0)
		if err != nil {
			return "", nil, false, err
		}
		return fmt.Sprintf("wrote %d bytes to %s", fi.Size, fi.Path), nil, false, nil

	case cove.AIToolReadFile:
		var in struct {
			Path string `json:"path"`
		}
		if err := decodeInput(name, input, &in); err != nil {
			return "", nil, false, err
		}
		if in.Path == "" {
			return "", nil, false, &toolFailure{"read_file needs a path"}
		}
		rc, fi, err := l.svc.ReadFile(ctx, l.sbID, in.Path)
		if err != nil {
			return "", nil, false, err
		}
		defer rc.Close()
		// Enough for the head; the tail needs the rest.
		var b bytes.Buffer
		if _, err := io.Copy(&b, io.LimitReader(rc, 4<<20)); err != nil {
			return "", nil, false, err
		}
		content, escaped := printable(b.String())
		text, note := trim(content, budget)
		head := fmt.Sprintf("%s (%d bytes)", fi.Path, fi.Size)
		if escaped {
			head += `, not all of it text: each byte that is not printable UTF-8 is shown as \xNN`
		}
		if note != "" {
			head += ", " + note
		}
		return head + ":\n" + fenced("", text), nil, false, nil
	}
	return "", nil, false, &toolFailure{fmt.Sprintf("unknown tool %q: use run_code, run_command, write_file or read_file", name)}
}

// restoreFiles writes back the files of the request (the tests, their
// data) that differ from what the request gave, so that the test command
// judges the code against them and not against what a tool call or the
// program itself made of them. It returns the names it wrote.
func (l *loop) restoreFiles(ctx context.Context) ([]string, error) {
	var restored []string
	for _, name := range slices.Sorted(maps.Keys(l.req.Files)) {
		want := l.req.Files[name]
		if rc, _, err := l.svc.ReadFile(ctx, l.sbID, name); err == nil {
			got, rerr := io.ReadAll(io.LimitReader(rc, int64(len(want))+1))
			rc.Close()
			if rerr == nil && bytes.Equal(got, want) {
				continue
			}
		}
		if _, err := l.svc.WriteFile(ctx, l.sbID, name, bytes.NewReader(want), 0); err != nil {
			return nil, fmt.Errorf("restoring %s before the test: %w", name, err)
		}
		restored = append(restored, name)
	}
	return restored, nil
}

// decodeInput decodes a tool call's input strictly.
func decodeInput(tool string, input json.RawMessage, v any) error {
	dec := json.NewDecoder(bytes.NewReader(input))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return &toolFailure{fmt.Sprintf("invalid input for %s: %v", tool, err)}
	}
	return nil
}

// describeRun tells Claude how a run ended, with its output trimmed to
// the budget.
func describeRun(what string, r *cove.ExecResult, budget int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s ended with verdict %s, exit code %d", what, r.Verdict, r.ExitCode)
	if r.Signal != "" {
		fmt.Fprintf(&b, ", signal %s", r.Signal)
	}
	if r.Message != "" {
		fmt.Fprintf(&b, " (%s)", r.Message)
	}
	fmt.Fprintf(&b, ", after %d ms.\n", r.WallMS)
	for _, o := range []outputData{
		newOutput("stdout", r.Stdout, r.StdoutTruncated, r.Limits.OutputBytes, budget),
		newOutput("stderr", r.Stderr, r.StderrTruncated, r.Limits.OutputBytes, budget),
	} {
		if o.Empty {
			fmt.Fprintf(&b, "%s: (empty)\n", o.Name)
			continue
		}
		b.WriteString(o.Name)
		if o.Note != "" {
			b.WriteString(" (" + o.Note + ")")
		}
		b.WriteString(":\n" + fenced("", o.Text) + "\n")
	}
	return strings.TrimRight(b.String(), "\n")
}

// trimmedRun returns a copy of r with its output trimmed to the budget.
func trimmedRun(r *cove.ExecResult, budget int) *cove.ExecResult {
	c := *r
	c.Stdout, _ = trim(r.Stdout, budget)
	c.Stderr, _ = trim(r.Stderr, budget)
	return &c
}

// fenced puts s in a fenced block that s cannot close.
func fenced(info, s string) string {
	f := fenceFor(s)
	return f + info + "\n" + strings.TrimRight(s, "\n") + "\n" + f
}

// testHeading begins the part of a run_code step's output about the test
// command's run.
const testHeading = "The test command `"

// errorLine matches a line that names an error or exception, such as
// Python's "AssertionError: 5 != 6" or node's "AssertionError
// [ERR_ASSERTION]: ...".
var errorLine = regexp.MustCompile(`^[\w.$]*(Error|Exception)\b`)

// TestFailure returns the line that best says why the test command of a
// run_code step failed, from the step's output: the last line of the
// test's stderr (else stdout) that names an error, else its last line
// that is not empty; "" when the output has no test run with output.
// Front ends show it under a step whose program ran but whose test did
// not pass.
func TestFailure(output string) string {
	i := strings.LastIndex(output, "\n\n"+testHeading)
	if i < 0 {
		return ""
	}
	blocks := map[string][]string{}
	lines := strings.Split(output[i+2:], "\n")
	for j := 1; j+1 < len(lines); j++ {
		name, _, _ := strings.Cut(lines[j], " ")
		name = strings.TrimSuffix(name, ":")
		fence := lines[j+1]
		if (name != "stdout" && name != "stderr") || !strings.HasSuffix(lines[j], ":") || len(fence) < 3 || strings.Trim(fence, "`") != "" {
			continue
		}
		k := j + 2
		for k < len(lines) && lines[k] != fence {
			k++
		}
		blocks[name] = lines[j+2 : min(k, len(lines))]
		j = k
	}
	for _, name := range []string{"stderr", "stdout"} {
		last := ""
		for _, l := range slices.Backward(blocks[name]) {
			l = strings.TrimSpace(l)
			if errorLine.MatchString(l) {
				return l
			}
			if last == "" {
				last = l
			}
		}
		if last != "" {
			return last
		}
	}
	return ""
}
