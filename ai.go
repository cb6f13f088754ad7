package cove

import (
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// AIAction is what Analyze asks Claude to do with a piece of code.
type AIAction string

// The actions.
const (
	AIExplain  AIAction = "explain"  // what the code does, and why its run ended as it did
	AIReview   AIAction = "review"   // findings with severity and line
	AIOptimize AIAction = "optimize" // improved code with a rationale
	AIFix      AIAction = "fix"      // corrected code for a failing run
)

// AIActions are the actions, in the order cove lists them.
var AIActions = []AIAction{AIExplain, AIReview, AIOptimize, AIFix}

// Bounds of an analysis request.
const (
	// MaxAICodeBytes bounds the code of an analysis.
	MaxAICodeBytes = 256 << 10
	// MaxAIFiles and MaxAIFilesBytes bound the other files of an analysis.
	MaxAIFiles      = 20
	MaxAIFilesBytes = 512 << 10
	// MaxAISteps, MaxAITokens and MaxAITimeout bound what a request may
	// ask of the fix loop.
	MaxAISteps   = 50
	MaxAITokens  = 2_000_000
	MaxAITimeout = time.Hour
)

// AIRequest is a request for analysis.
type AIRequest struct {
	Action   AIAction `json:"action"`
	Language string   `json:"language"`
	Code     string   `json:"code"`
	// Filename names the code's file in the workspace ("main.py"); the
	// fix loop runs the code under this name, so that a Test can import
	// it. Default: the language's main file.
	Filename string `json:"filename,omitempty"`
	// Execution is the code's last run, when there is one (its stdout and
	// stderr included).
	Execution *ExecResult `json:"execution,omitempty"`
	// Verify, for fix, runs a loop in which Claude runs code in a sandbox
	// through tools until it works or a bound is reached.
	Verify bool `json:"verify,omitempty"`
	// Test is a shell command that must pass too for a verified fix; it
	// runs in the workspace after the code ran with verdict ok.
	Test string `json:"test,omitempty"`
	// SandboxID is the sandbox the verify loop uses (default: a new
	// one, with the limits of Execution, deleted at the end).
	SandboxID string `json:"sandbox_id,omitempty"`
	// Files are other files of the program (tests, inputs), keyed by
	// their path relative to /workspace: Claude sees them, and the verify
	// loop writes them into its sandbox before it starts.
	Files map[string][]byte `json:"files,omitempty"`
	// MaxSteps, MaxTokens and Timeout bound the verify loop: tool calls,
	// tokens (input and output, all turns), and time. Zero: the server's
	// defaults.
	MaxSteps  int           `json:"max_steps,omitempty"`
	MaxTokens int64         `json:"max_tokens,omitempty"`
	Timeout   time.Duration `json:"timeout,omitempty"`
}

// Validate checks what can be checked without the service (the language
// is the service's). Errors: invalid, saying what is accepted.
func (r *AIRequest) Validate() error {
	known := false
	for _, a := range AIActions {
		known = known || r.Action == a
	}
	switch {
	case !known:
		return Errorf(CodeInvalid, "unknown action %q: use explain, review, optimize or fix", r.Action)
	case r.Code == "":
		return Errorf(CodeInvalid, "no code to analyze: give the code")
	case len(r.Code) > MaxAICodeBytes:
		return Errorf(CodeInvalid, "the code is %s, larger than the %s an analysis takes", FormatBytes(int64(len(r.Code))), FormatBytes(MaxAICodeBytes))
	case !utf8.ValidString(r.Code):
		return Errorf(CodeInvalid, "the code is not UTF-8 text")
	case r.Verify && r.Action != AIFix:
		return Errorf(CodeInvalid, "verify is for the fix action only, not %s", r.Action)
	case !r.Verify && (r.Test != "" || r.SandboxID != "" || r.MaxSteps != 0 || r.MaxTokens != 0 || r.Timeout != 0):
		return Errorf(CodeInvalid, "test, sandbox_id, max_steps, max_tokens and timeout apply to a verified fix only: add verify")
	case r.MaxSteps < 0 || r.MaxSteps > MaxAISteps:
		return Errorf(CodeInvalid, "max_steps %d is out of range (1 to %d)", r.MaxSteps, MaxAISteps)
	case r.MaxTokens < 0 || r.MaxTokens > MaxAITokens:
		return Errorf(CodeInvalid, "max_tokens %d is out of range (1 to %d)", r.MaxTokens, MaxAITokens)
	case r.Timeout < 0 || r.Timeout > MaxAITimeout:
		return Errorf(CodeInvalid, "timeout %s is out of range (up to %s)", r.Timeout, MaxAITimeout)
	case len(r.Files) > MaxAIFiles:
		return Errorf(CodeInvalid, "%d files: an analysis takes at most %d", len(r.Files), MaxAIFiles)
	}
	total := 0
	for name, b := range r.Files {
		total += len(b)
		if name == "" || strings.HasPrefix(name, "/") || slices.Contains(strings.Split(name, "/"), "..") {
			return Errorf(CodeInvalid, "file name %q: use a path relative to the workspace, without ..", name)
		}
	}
	if total > MaxAIFilesBytes {
		return Errorf(CodeInvalid, "the files are %s, more than the %s an analysis takes", FormatBytes(int64(total)), FormatBytes(MaxAIFilesBytes))
	}
	return nil
}

// AIEventType tags an event of an analysis.
type AIEventType string

// The analysis event types.
const (
	AIEventText   AIEventType = "text"   // a chunk of the answer's text (Markdown)
	AIEventStep   AIEventType = "step"   // a tool call of the fix loop and its real result
	AIEventResult AIEventType = "result" // the final answer (last)
)

// AIEvent is one item of an analysis stream.
type AIEvent struct {
	Type   AIEventType `json:"type"`
	Text   string      `json:"text,omitempty"`
	Step   *AIStep     `json:"step,omitempty"`
	Result *AIResult   `json:"result,omitempty"`
}

// The tools of the fix loop.
const (
	AIToolRunCode    = "run_code"    // run the code (verifies it)
	AIToolWriteFile  = "write_file"  // write a file into the workspace
	AIToolReadFile   = "read_file"   // read a file of the workspace
	AIToolRunCommand = "run_command" // run a shell command in the workspace
)

// AIStep is one tool call of the fix loop and what running it gave.
type AIStep struct {
	// N numbers the steps from 1.
	N    int    `json:"n"`
	Tool string `json:"tool"`
	// Input is the tool call's input, as Claude sent it (a JSON object).
	Input json.RawMessage `json:"input"`
	// Output is what cove gave back to Claude: the real result, trimmed.
	Output string `json:"output"`
	// IsError says the tool call failed (bad input, a failing run).
	IsError bool `json:"is_error,omitempty"`
	// Run is the execution of run_code and run_command (its output
	// trimmed as in Output).
	Run *ExecResult `json:"run,omitempty"`
}

// AIFinding is one finding of a review.
type AIFinding struct {
	Severity string `json:"severity"` // critical, high, medium, low, info
	Category string `json:"category"` // bug, security, performance, style
	Line     int    `json:"line"`     // 0: the whole program
	Message  string `json:"message"`
}

// Why an answer or a fix loop ended (AIResult.StopReason). Answers also
// end with the API's own reasons, such as "max_tokens" (the answer was
// cut) and "refusal".
const (
	AIStopEndTurn   = "end_turn"   // the answer is complete; a fix loop ended without a verified run
	AIStopVerified  = "verified"   // the code ran with verdict ok (and the test passed)
	AIStopMaxSteps  = "max_steps"  // the loop reached its step bound
	AIStopMaxTokens = "max_tokens" // the token bound (or the answer's own limit) was reached
	AIStopTimeout   = "timeout"    // the loop reached its time bound
)

// AIResult is the complete answer of an analysis.
type AIResult struct {
	Action   AIAction `json:"action"`
	Model    string   `json:"model"`
	Language string   `json:"language,omitempty"`
	// Text is the whole answer (Markdown).
	Text string `json:"text"`
	// Code is the improved or fixed code, when the action gives code.
	Code string `json:"code,omitempty"`
	// Findings are a review's findings.
	Findings []AIFinding `json:"findings,omitempty"`
	// Steps and Verified describe a verified fix: every tool call, and
	// whether the final code ran with verdict ok (and the test passed).
	Steps    []AIStep `json:"steps,omitempty"`
	Verified bool     `json:"verified,omitempty"`
	// Run is the final code's last run in the loop (its passing run when
	// Verified); TestRun is the test command's run after it.
	Run     *ExecResult `json:"run,omitempty"`
	TestRun *ExecResult `json:"test_run,omitempty"`
	// Usage counts tokens.
	InputTokens  int64 `json:"input_tokens"`
	OutputTokens int64 `json:"output_tokens"`
	// StopReason says why the answer or the loop ended.
	StopReason string `json:"stop_reason,omitempty"`
}

// AIStream delivers an analysis's events in order, ending with a result
// event; Next then returns io.EOF, and ctx.Err() once the context of
// Analyze is cancelled. Close stops the analysis (and, for a fix loop,
// deletes the sandbox it created) before it returns.
type AIStream interface {
	Next() (AIEvent, error)
	Close() error
}

// CollectAI drains an analysis stream into its result and closes it.
func CollectAI(s AIStream) (*AIResult, error) {
	defer s.Close()
	for {
		ev, err := s.Next()
		if errors.Is(err, io.EOF) {
			return nil, Errorf(CodeInternal, "analysis ended without a result")
		}
		if err != nil {
			return nil, err
		}
		if ev.Type == AIEventResult && ev.Result != nil {
			return ev.Result, nil
		}
	}
}
