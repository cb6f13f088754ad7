package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/spf13/cobra"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/ai"
	"github.com/cove-sandbox/cove/internal/wire"
)

// analyzer returns the code analysis of the configuration (ANTHROPIC_API_KEY,
// ANTHROPIC_BASE_URL, COVE_AI_MODEL). Without a key it answers every
// analysis with an error that names the variable.
func (e *env) analyzer(log *slog.Logger) *ai.Analyzer {
	return ai.New(ai.Options{APIKey: e.cfg.AI.APIKey, BaseURL: e.cfg.AI.BaseURL, Model: e.cfg.AI.Model, Logger: log})
}

// aiFlags are the flags of the ai commands.
type aiFlags struct {
	language string
	files    []string
	noRun    bool
	asJSON   bool
	output   string
	verify   bool
	test     string
	maxSteps int
	timeout  time.Duration
}

func newAICmd(e *env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "ai",
		Short: "Ask Claude to explain, review, optimize or fix a program, knowing what it did when it ran",
		Long: `Ask Claude about a program. cove first runs the program in a sandbox (unless
--no-run) and tells Claude what happened: the output, the exit code, the
verdict and the limits that applied. The answer streams as it is written.

  explain    what the program does, and why its run ended as it did
  review     findings (bugs, security, performance, style) with severity and line
  optimize   improved code with a short rationale
  fix        corrected code and the cause; with --verify, Claude runs its fix in
             a sandbox, seeing the real results, until it works

Configuration: ANTHROPIC_API_KEY (required), COVE_AI_MODEL (default ` + ai.DefaultModel + `),
ANTHROPIC_BASE_URL (a gateway or proxy). With --server or COVE_URL set, the
server runs the program and asks Claude, with its own key.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return cove.Errorf(cove.CodeInvalid, "unknown action %q: use explain, review, optimize or fix", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(
		newAIActionCmd(e, cove.AIExplain, "Explain what a program does and why its run ended as it did",
			"  cove ai explain hello.py\n  cove ai explain --no-run -l js snippet.txt"),
		newAIActionCmd(e, cove.AIReview, "List a program's bugs, security, performance and style problems",
			"  cove ai review server.py\n  cove ai review --json main.ts | jq '.findings'"),
		newAIActionCmd(e, cove.AIOptimize, "Improve a program, with a short rationale",
			"  cove ai optimize slow.py\n  cove ai optimize -o fast.py slow.py"),
		newAIActionCmd(e, cove.AIFix, "Fix a failing program; --verify runs the fix until it works",
			"  cove ai fix broken.py\n  cove ai fix --verify broken.py\n  cove ai fix --verify -f test_app.py --test 'python3 -m unittest -q test_app' -o app.py app.py"),
	)
	return cmd
}

func newAIActionCmd(e *env, action cove.AIAction, short, example string) *cobra.Command {
	var f aiFlags
	cmd := &cobra.Command{
		Use:     string(action) + " [flags] FILE",
		Short:   short,
		Example: example,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runAI(cmd.Context(), e, action, args, &f)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.language, "lang", "l", "", "language: python (py), javascript (js, node), typescript (ts), bash (sh); default from the extension")
	fl.StringArrayVarP(&f.files, "file", "f", nil, "another file of the program (a test, an input), put next to it and shown to Claude (repeatable)")
	fl.BoolVar(&f.noRun, "no-run", false, "do not run the program first: Claude sees the code only")
	fl.BoolVar(&f.asJSON, "json", false, "print the whole answer as one JSON object at the end instead of streaming it")
	if action == cove.AIOptimize || action == cove.AIFix {
		fl.StringVarP(&f.output, "output", "o", "", "write the resulting code to this file")
	}
	if action == cove.AIFix {
		fl.BoolVar(&f.verify, "verify", false, "let Claude run its fix in a sandbox until it runs with verdict ok")
		fl.StringVar(&f.test, "test", "", "with --verify: a shell command that must pass too (runs in the workspace, next to the program)")
		fl.IntVar(&f.maxSteps, "max-steps", 0, fmt.Sprintf("with --verify: the most tool calls (default %d)", ai.DefaultMaxSteps))
		durationVar(fl, &f.timeout, "max-time", fmt.Sprintf("with --verify: the longest the loop may take (default %s)", ai.DefaultLoopTimeout))
	}
	return cmd
}

// runAI runs the program (unless --no-run), asks Claude and prints the
// answer as it streams.
func runAI(ctx context.Context, e *env, action cove.AIAction, args []string, f *aiFlags) error {
	if len(args) != 1 {
		return cove.Errorf(cove.CodeInvalid, "give one program file (or - with -l for standard input): cove ai %s FILE", action)
	}
	if !f.verify && (f.test != "" || f.maxSteps != 0 || f.timeout != 0) {
		return cove.Errorf(cove.CodeInvalid, "--test, --max-steps and --max-time need --verify")
	}
	rr, err := buildRunRequest(e, f.language, "", args, nil)
	if err != nil {
		return err
	}
	if rr.Files, err = readFiles(f.files); err != nil {
		return err
	}
	req := cove.AIRequest{
		Action: action, Language: rr.Language, Code: rr.Code, Filename: rr.Filename, Files: rr.Files,
		Verify: f.verify, Test: f.test, MaxSteps: f.maxSteps, Timeout: f.timeout,
	}
	if err := req.Validate(); err != nil {
		return err
	}
	// The answer's text goes to stdout as it streams; cove's own lines
	// (a retry, an error) go to stderr, each on a line of its own.
	out := &lineTracker{w: e.stdout, atStart: true}
	var svc cove.Service
	if url, remote := e.serverURL(); remote {
		if svc, err = e.remoteService(ctx); err != nil {
			return err
		}
		// Say so before running the program for nothing.
		v, err := svc.Version(ctx)
		if err != nil {
			return err
		}
		if !v.Analysis {
			return cove.Errorf(cove.CodeUnavailable, "the cove server at %s cannot analyze code: set ANTHROPIC_API_KEY where `cove serve` runs, then restart it", url)
		}
	} else {
		if e.cfg.AI.APIKey == "" {
			return ai.NoKeyError()
		}
		l, err := e.localService(ctx)
		if err != nil {
			return err
		}
		defer l.close(ctx)
		l.sweepInBackground(ctx)
		svc = l
		if !f.asJSON {
			// The analysis runs here: its retries are told as they
			// happen, in a line of their own, rather than logged.
			ctx = ai.WithRetryNotice(ctx, func(msg string) {
				out.endLine()
				fmt.Fprintf(e.stderr, "cove: %s\n", msg)
			})
		}
	}
	name := args[0]
	if rr.Filename != "" {
		name = rr.Filename
	}
	if !f.noRun {
		st, err := svc.Run(ctx, rr)
		if err != nil {
			return err
		}
		res, err := cove.Collect(st)
		if err != nil {
			return err
		}
		req.Execution = res
		if !f.asJSON {
			// Said now: asking Claude may take a while.
			fmt.Fprintf(e.stderr, "cove: ran %s: %s\n", name, runSummary(res))
		}
	}
	st, err := svc.Analyze(ctx, req)
	if err != nil {
		return err
	}
	return printAnalysis(e, st, f, out)
}

// readFiles reads the --file files, keyed by their base names.
func readFiles(paths []string) (map[string][]byte, error) {
	if len(paths) == 0 {
		return nil, nil
	}
	files := map[string][]byte{}
	for _, p := range paths {
		name := filepath.Base(p)
		if _, dup := files[name]; dup {
			return nil, cove.Errorf(cove.CodeInvalid, "--file %s: two files are named %s", p, name)
		}
		fi, err := os.Stat(p)
		if err == nil && fi.IsDir() {
			return nil, cove.Errorf(cove.CodeInvalid, "--file %s is a directory: give a file", p)
		}
		b, err := readProgram(p, "--file", cove.MaxAIFilesBytes)
		if err != nil {
			return nil, err
		}
		files[name] = b
	}
	return files, nil
}

// runSummary describes how a run ended, in a few words.
func runSummary(r *cove.ExecResult) string {
	s := fmt.Sprintf("%s, exit code %d, %d ms", r.Verdict, r.ExitCode, r.WallMS)
	if r.Message != "" {
		s += " (" + r.Message + ")"
	}
	return s
}

// printAnalysis prints the answer's text as it streams to out, each
// step of a fix loop as it runs, then what the text does not show: a
// review's findings, the code of a fix loop, the loop's verdict. With -o
// it writes the code: with --verify only code that passed.
func printAnalysis(e *env, st cove.AIStream, f *aiFlags, out *lineTracker) error {
	defer st.Close()
	res, err := readAnalysis(st, f, out)
	if err != nil {
		// An error goes on a line of its own, not after the text.
		out.endLine()
		return err
	}
	wrote, err := writeCode(res, f)
	if err != nil {
		out.endLine()
		return err
	}
	if f.asJSON {
		if err := writeJSON(e.stdout, wire.AIResultFrom(res)); err != nil {
			return err
		}
	} else {
		out.endLine()
		if res.Action == cove.AIReview {
			out.para()
			out.write(findingsText(res.Findings))
		}
		if res.Code != "" && f.verify && !strings.Contains(res.Text, strings.TrimSpace(res.Code)) {
			code := safeText(strings.TrimRight(res.Code, "\n"))
			fence := strings.Repeat("`", max(3, longestRun(code, '`')+1))
			label := "The final code:"
			if !res.Verified {
				label = "The last attempt, which did not pass:"
			}
			out.para()
			out.write(fmt.Sprintf("%s\n\n%s%s\n%s\n%s\n", label, fence, res.Language, code, fence))
		}
		if wrote {
			fmt.Fprintf(e.stderr, "cove: wrote the code to %s\n", f.output)
		}
		fmt.Fprintf(e.stderr, "cove: %s, %d input and %d output tokens\n", res.Model, res.InputTokens, res.OutputTokens)
		if !f.verify {
			switch {
			case res.StopReason == cove.AIStopMaxTokens:
				fmt.Fprintln(e.stderr, "cove: the answer was cut at its token limit")
			case res.StopReason == "refusal":
				fmt.Fprintln(e.stderr, "cove: Claude declined to answer")
			case strings.TrimSpace(res.Text) == "":
				fmt.Fprintln(e.stderr, "cove: the answer was empty")
			}
		}
	}
	if !f.verify {
		return nil
	}
	if res.Verified {
		if !f.asJSON {
			msg := "the fixed code ran with verdict ok"
			if f.test != "" {
				msg += " and the test passed"
			}
			fmt.Fprintf(e.stderr, "cove: verified: %s (%s)\n", msg, plural(len(res.Steps), "step"))
		}
		return nil
	}
	if !f.asJSON {
		msg := fmt.Sprintf("cove: not verified: %s after %s", stopText(res.StopReason), plural(len(res.Steps), "step"))
		if f.output != "" {
			msg += "; " + f.output + " left as it was"
		}
		fmt.Fprintln(e.stderr, msg)
	}
	return &exitError{code: 1}
}

// readAnalysis prints the stream's text and steps as they come (unless
// --json) and returns its result.
func readAnalysis(st cove.AIStream, f *aiFlags, out *lineTracker) (*cove.AIResult, error) {
	for {
		ev, err := st.Next()
		if errors.Is(err, io.EOF) {
			return nil, cove.Errorf(cove.CodeUnavailable, "the analysis ended without its result")
		}
		if err != nil {
			return nil, err
		}
		if ev.Type == cove.AIEventResult && ev.Result != nil {
			return ev.Result, nil
		}
		if f.asJSON {
			continue
		}
		switch ev.Type {
		case cove.AIEventText:
			out.writeText(safeText(ev.Text))
		case cove.AIEventStep:
			out.para()
			out.write(stepLine(ev.Step) + "\n\n")
		}
	}
}

// writeCode writes the answer's code to the file of -o, if asked, and
// reports whether it did. A fix loop's code is written only when it
// passed: a failed attempt must not replace the program. An answer
// without code says why it has none.
func writeCode(res *cove.AIResult, f *aiFlags) (bool, error) {
	if f.output == "" || (f.verify && !res.Verified) {
		return false, nil
	}
	if res.Code == "" {
		why := "the answer has no code"
		switch res.StopReason {
		case cove.AIStopMaxTokens:
			why = "the answer was cut at its token limit before its code was whole"
		case "refusal":
			why = "Claude declined to answer"
		}
		return false, cove.Errorf(cove.CodeUnavailable, "%s: nothing written to %s", why, f.output)
	}
	if err := os.WriteFile(f.output, []byte(res.Code), 0o644); err != nil {
		return false, cove.Errorf(cove.CodeInvalid, "writing %s: %v", f.output, err)
	}
	return true, nil
}

// plural gives n and the noun, in the plural unless n is 1.
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// stopText says why a fix loop ended without a verified fix.
func stopText(reason string) string {
	switch reason {
	case cove.AIStopMaxSteps:
		return "the loop reached its step limit"
	case cove.AIStopMaxTokens:
		return "the loop reached its token limit"
	case cove.AIStopTimeout:
		return "the loop reached its time limit"
	case cove.AIStopEndTurn:
		return "Claude stopped without a passing run"
	case "refusal":
		return "Claude declined"
	}
	return "the loop ended (" + reason + ")"
}

// stepLine describes a step of the fix loop in one or two lines.
func stepLine(s *cove.AIStep) string {
	var in map[string]any
	_ = json.Unmarshal(s.Input, &in)
	str := func(k string) string { v, _ := in[k].(string); return v }
	what := ""
	switch s.Tool {
	case cove.AIToolRunCode:
		what = fmt.Sprintf("%d lines", strings.Count(strings.TrimRight(str("code"), "\n"), "\n")+1)
	case cove.AIToolRunCommand:
		what = str("command")
	case cove.AIToolWriteFile:
		what = fmt.Sprintf("%s (%d bytes)", str("path"), len(str("content")))
	case cove.AIToolReadFile:
		what = str("path")
	}
	line := fmt.Sprintf("[step %d] %s: %s", s.N, s.Tool, printableLine(firstLine(what)))
	switch {
	case s.Run != nil && s.IsError && s.Run.Verdict == cove.VerdictOK:
		// The program ran, and what failed is the test run after it.
		line += " -> " + runSummary(s.Run) + "; the test failed"
		if l := ai.TestFailure(s.Output); l != "" {
			line += "\n         " + printableLine(l)
		}
	case s.Run != nil:
		line += " -> " + runSummary(s.Run)
		if s.IsError {
			if l := lastLine(s.Run.Stderr); l != "" {
				line += "\n         " + printableLine(l)
			} else if l := lastLine(s.Run.Stdout); l != "" {
				line += "\n         " + printableLine(l)
			}
		}
	default:
		line += " -> " + printableLine(firstLine(s.Output))
	}
	return line
}

// findingsText lists a review's findings.
func findingsText(fs []cove.AIFinding) string {
	if len(fs) == 0 {
		return "Findings: none\n"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "Findings (%d):\n", len(fs))
	for i, f := range fs {
		where := "whole program"
		if f.Line > 0 {
			where = fmt.Sprintf("line %d", f.Line)
		}
		fmt.Fprintf(&b, "  %d. [%s] %s, %s: %s\n", i+1, f.Severity, f.Category, where, printableLine(f.Message))
	}
	return b.String()
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i] + " ..."
	}
	return s
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// safeText drops control characters but newlines and tabs, so that an
// answer (which may quote a program's output) cannot drive the terminal.
func safeText(s string) string {
	return strings.Map(func(r rune) rune {
		if r != '\n' && r != '\t' && unicode.IsControl(r) {
			return -1
		}
		return r
	}, s)
}

// lineTracker writes text and remembers whether the output stands at the
// start of a line, and after a blank line. It is safe for concurrent use:
// a retry's notice ends the line from the analysis's goroutine.
type lineTracker struct {
	mu      sync.Mutex
	w       io.Writer
	atStart bool
	blank   bool
}

func (l *lineTracker) write(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.writeLocked(s)
}

// writeText writes a chunk of the answer's text; at the start of a
// paragraph, without the blank lines it begins with.
func (l *lineTracker) writeText(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.blank {
		s = strings.TrimLeft(s, "\n")
	}
	l.writeLocked(s)
}

func (l *lineTracker) writeLocked(s string) {
	if s == "" {
		return
	}
	io.WriteString(l.w, s)
	l.blank = strings.HasSuffix(s, "\n\n") || (l.atStart && strings.HasPrefix(s, "\n") && strings.Trim(s, "\n") == "")
	l.atStart = strings.HasSuffix(s, "\n")
}

// para starts a paragraph: it ends the line and leaves one blank line.
func (l *lineTracker) para() {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case !l.atStart:
		l.writeLocked("\n\n")
	case !l.blank:
		l.writeLocked("\n")
	}
}

// endLine ends an unfinished line.
func (l *lineTracker) endLine() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.atStart {
		l.writeLocked("\n")
	}
}

// longestRun returns the length of the longest run of c in s.
func longestRun(s string, c rune) int {
	longest, run := 0, 0
	for _, r := range s {
		if r == c {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	return longest
}
