package wire

import (
	"encoding/json"
	"time"

	"github.com/cove-sandbox/cove"
)

// AIRequest is the body of POST /v1/ai/{action}: cove.AIRequest without
// its action, which is the path's. Execution is a result as /v1/run and
// the exec routes answer it, so a client can pass a run's result on as is.
type AIRequest struct {
	Language  string  `json:"language"`
	Code      string  `json:"code"`
	Filename  string  `json:"filename,omitempty"`
	Execution *Result `json:"execution,omitempty"`
	Verify    bool    `json:"verify,omitempty"`
	Test      string  `json:"test,omitempty"`
	SandboxID string  `json:"sandbox_id,omitempty"`
	// Files are other files of the program, keyed by their path relative
	// to /workspace.
	Files     map[string]FileContent `json:"files,omitempty"`
	MaxSteps  int                    `json:"max_steps,omitzero"`
	MaxTokens int64                  `json:"max_tokens,omitzero"`
	Timeout   Duration               `json:"timeout,omitzero"`
}

// AIRequestFrom returns r on the wire (without its action).
func AIRequestFrom(r cove.AIRequest) *AIRequest {
	w := &AIRequest{
		Language: r.Language, Code: r.Code, Filename: r.Filename, Verify: r.Verify, Test: r.Test,
		SandboxID: r.SandboxID, MaxSteps: r.MaxSteps, MaxTokens: r.MaxTokens, Timeout: Duration(r.Timeout),
	}
	if r.Execution != nil {
		w.Execution = ResultFrom(r.Execution)
	}
	if len(r.Files) > 0 {
		w.Files = make(map[string]FileContent, len(r.Files))
		for k, v := range r.Files {
			w.Files[k] = FileContent(v)
		}
	}
	return w
}

// Request converts w, for the action of the path, to a cove.AIRequest.
// Errors: invalid (a malformed execution).
func (w *AIRequest) Request(action string) (cove.AIRequest, error) {
	r := cove.AIRequest{
		Action: cove.AIAction(action), Language: w.Language, Code: w.Code, Filename: w.Filename,
		Verify: w.Verify, Test: w.Test, SandboxID: w.SandboxID,
		MaxSteps: w.MaxSteps, MaxTokens: w.MaxTokens, Timeout: time.Duration(w.Timeout),
	}
	if len(w.Files) > 0 {
		r.Files = make(map[string][]byte, len(w.Files))
		for k, v := range w.Files {
			if v == nil {
				v = FileContent{}
			}
			r.Files[k] = v
		}
	}
	if w.Execution != nil {
		ex, err := w.Execution.Cove()
		if err != nil {
			return r, cove.Errorf(cove.CodeInvalid, "execution: %s", cove.ErrorMessage(err))
		}
		r.Execution = ex
	}
	return r, nil
}

// AIStep is cove.AIStep on the wire.
type AIStep struct {
	N       int             `json:"n"`
	Tool    string          `json:"tool"`
	Input   json.RawMessage `json:"input"`
	Output  string          `json:"output"`
	IsError bool            `json:"is_error,omitempty"`
	Run     *Result         `json:"run,omitempty"`
}

// AIResult is cove.AIResult on the wire.
type AIResult struct {
	Action       string           `json:"action"`
	Model        string           `json:"model"`
	Language     string           `json:"language,omitempty"`
	Text         string           `json:"text"`
	Code         string           `json:"code,omitempty"`
	Findings     []cove.AIFinding `json:"findings,omitempty"`
	Steps        []AIStep         `json:"steps,omitempty"`
	Verified     bool             `json:"verified,omitempty"`
	Run          *Result          `json:"run,omitempty"`
	TestRun      *Result          `json:"test_run,omitempty"`
	InputTokens  int64            `json:"input_tokens"`
	OutputTokens int64            `json:"output_tokens"`
	StopReason   string           `json:"stop_reason,omitempty"`
}

// AIEvent is one item of an analysis stream, one JSON object per NDJSON
// line or SSE event: {"type": "text", "text": "..."}, {"type": "step",
// "step": {...}}, last {"type": "result", "result": {...}}; or, when the
// analysis fails after the stream began, {"type": "error", "error": {...}}.
type AIEvent struct {
	Type   string       `json:"type"`
	Text   string       `json:"text,omitempty"`
	Step   *AIStep      `json:"step,omitempty"`
	Result *AIResult    `json:"result,omitempty"`
	Error  *ErrorDetail `json:"error,omitempty"`
}

// AIStepFrom returns s on the wire.
func AIStepFrom(s cove.AIStep) AIStep {
	w := AIStep{N: s.N, Tool: s.Tool, Input: s.Input, Output: s.Output, IsError: s.IsError}
	if len(w.Input) == 0 {
		w.Input = json.RawMessage("{}")
	}
	if s.Run != nil {
		w.Run = ResultFrom(s.Run)
	}
	return w
}

// AIResultFrom returns r on the wire.
func AIResultFrom(r *cove.AIResult) *AIResult {
	w := &AIResult{
		Action: string(r.Action), Model: r.Model, Language: r.Language, Text: r.Text, Code: r.Code,
		Findings: r.Findings, Verified: r.Verified, InputTokens: r.InputTokens, OutputTokens: r.OutputTokens,
		StopReason: r.StopReason,
	}
	for _, s := range r.Steps {
		w.Steps = append(w.Steps, AIStepFrom(s))
	}
	if r.Run != nil {
		w.Run = ResultFrom(r.Run)
	}
	if r.TestRun != nil {
		w.TestRun = ResultFrom(r.TestRun)
	}
	return w
}

// AIEventFrom returns ev on the wire.
func AIEventFrom(ev cove.AIEvent) *AIEvent {
	w := &AIEvent{Type: string(ev.Type), Text: ev.Text}
	if ev.Step != nil {
		s := AIStepFrom(*ev.Step)
		w.Step = &s
	}
	if ev.Result != nil {
		w.Result = AIResultFrom(ev.Result)
	}
	return w
}

// Cove converts w back to a cove.AIStep. Errors: invalid.
func (w *AIStep) Cove() (cove.AIStep, error) {
	s := cove.AIStep{N: w.N, Tool: w.Tool, Input: w.Input, Output: w.Output, IsError: w.IsError}
	if w.Run != nil {
		r, err := w.Run.Cove()
		if err != nil {
			return s, err
		}
		s.Run = r
	}
	return s, nil
}

// Cove converts w back to a cove.AIResult. Errors: invalid.
func (w *AIResult) Cove() (*cove.AIResult, error) {
	r := &cove.AIResult{
		Action: cove.AIAction(w.Action), Model: w.Model, Language: w.Language, Text: w.Text, Code: w.Code,
		Findings: w.Findings, Verified: w.Verified, InputTokens: w.InputTokens, OutputTokens: w.OutputTokens,
		StopReason: w.StopReason,
	}
	for i := range w.Steps {
		s, err := w.Steps[i].Cove()
		if err != nil {
			return nil, err
		}
		r.Steps = append(r.Steps, s)
	}
	var err error
	if w.Run != nil {
		if r.Run, err = w.Run.Cove(); err != nil {
			return nil, err
		}
	}
	if w.TestRun != nil {
		if r.TestRun, err = w.TestRun.Cove(); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// Cove converts w back to a cove.AIEvent; an error event becomes its
// *cove.Error. Errors: invalid (a malformed event).
func (w *AIEvent) Cove() (cove.AIEvent, error) {
	switch w.Type {
	case EventError:
		if w.Error == nil {
			return cove.AIEvent{}, cove.Errorf(cove.CodeInternal, "the analysis failed without saying why")
		}
		return cove.AIEvent{}, w.Error.Err()
	case string(cove.AIEventText):
		return cove.AIEvent{Type: cove.AIEventText, Text: w.Text}, nil
	case string(cove.AIEventStep):
		if w.Step == nil {
			return cove.AIEvent{}, cove.Errorf(cove.CodeInvalid, "malformed event: step without a step")
		}
		s, err := w.Step.Cove()
		if err != nil {
			return cove.AIEvent{}, err
		}
		return cove.AIEvent{Type: cove.AIEventStep, Step: &s}, nil
	case string(cove.AIEventResult):
		if w.Result == nil {
			return cove.AIEvent{}, cove.Errorf(cove.CodeInvalid, "malformed event: result without a result")
		}
		r, err := w.Result.Cove()
		if err != nil {
			return cove.AIEvent{}, err
		}
		return cove.AIEvent{Type: cove.AIEventResult, Result: r}, nil
	}
	// Event types of a newer server pass through for the caller to skip.
	return cove.AIEvent{Type: cove.AIEventType(w.Type), Text: w.Text}, nil
}
