package cove

// AIAction is what Analyze asks Claude to do with a piece of code.
type AIAction string

// The actions.
const (
	AIExplain  AIAction = "explain"  // what the code does, and why its run ended as it did
	AIReview   AIAction = "review"   // findings with severity and line
	AIOptimize AIAction = "optimize" // improved code with a rationale
	AIFix      AIAction = "fix"      // corrected code for a failing run
)

// AIRequest is a request for analysis.
type AIRequest struct {
	Action   AIAction `json:"action"`
	Language string   `json:"language"`
	Code     string   `json:"code"`
	// Execution is the code's last run, when there is one (its stdout and
	// stderr included).
	Execution *ExecResult `json:"execution,omitempty"`
	// Verify, for fix, runs a loop in which Claude runs code in a sandbox
	// through tools until it works or a bound is reached.
	Verify bool `json:"verify,omitempty"`
	// Test is a command that must pass too for a verified fix.
	Test string `json:"test,omitempty"`
	// SandboxID is the sandbox the verify loop uses (default: a new
	// ephemeral one).
	SandboxID string `json:"sandbox_id,omitempty"`
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

// AIStep is one tool call of the fix loop and what running it gave.
type AIStep struct {
	Tool   string `json:"tool"`
	Input  any    `json:"input"`
	Output string `json:"output"`
	// IsError says the tool call failed (bad input, a failing run).
	IsError bool `json:"is_error,omitempty"`
}

// AIFinding is one finding of a review.
type AIFinding struct {
	Severity string `json:"severity"` // critical, high, medium, low, info
	Category string `json:"category"` // bug, security, performance, style
	Line     int    `json:"line,omitempty"`
	Message  string `json:"message"`
}

// AIResult is the complete answer of an analysis.
type AIResult struct {
	Action AIAction `json:"action"`
	Model  string   `json:"model"`
	// Text is the whole answer (Markdown).
	Text string `json:"text"`
	// Code is the improved or fixed code, when the action gives code.
	Code string `json:"code,omitempty"`
	// Findings are a review's findings.
	Findings []AIFinding `json:"findings,omitempty"`
	// Steps and Verified describe a verified fix: every tool call, and
	// whether the final code ran with verdict ok (and the test passed).
	Steps    []AIStep    `json:"steps,omitempty"`
	Verified bool        `json:"verified,omitempty"`
	Run      *ExecResult `json:"run,omitempty"`
	// Usage counts tokens.
	InputTokens  int64 `json:"input_tokens"`
	OutputTokens int64 `json:"output_tokens"`
	// StopReason says why the answer or the loop ended.
	StopReason string `json:"stop_reason,omitempty"`
}

// AIStream delivers an analysis's events in order, ending with a result
// event; Next then returns io.EOF. Close stops the analysis.
type AIStream interface {
	Next() (AIEvent, error)
	Close() error
}
