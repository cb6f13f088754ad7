package ai

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/anthropics/anthropic-sdk-go"

	"github.com/cove-sandbox/cove"
)

// bounds are the limits of one fix loop.
type bounds struct {
	steps   int
	tokens  int64
	timeout time.Duration
}

func (a *Analyzer) boundsOf(req cove.AIRequest) bounds {
	b := bounds{steps: a.opts.MaxSteps, tokens: a.opts.LoopTokens, timeout: a.opts.LoopTimeout}
	if req.MaxSteps > 0 {
		b.steps = req.MaxSteps
	}
	if req.MaxTokens > 0 {
		b.tokens = req.MaxTokens
	}
	if req.Timeout > 0 {
		b.timeout = req.Timeout
	}
	return b
}

// loop is one verified fix: Claude's turns and the tool calls that cove
// runs for it in a sandbox.
type loop struct {
	a      *Analyzer
	svc    cove.Service
	req    cove.AIRequest
	sbID   string
	bounds bounds

	// The code of the last run_code call, its run and its test's run.
	code    string
	run     *cove.ExecResult
	testRun *cove.ExecResult
}

// sandboxLabel marks the sandboxes that fix loops create.
const sandboxLabel = "cove.ai"

// startLoop starts a verified fix: it gets the sandbox (req.SandboxID, or
// a new one with the limits of the failing run), sends the first request,
// and runs the loop in the stream's goroutine. The sandbox it created is
// deleted when the loop ends.
func (a *Analyzer) startLoop(ctx context.Context, svc cove.Service, req cove.AIRequest) (cove.AIStream, error) {
	b := a.boundsOf(req)
	var sb *cove.Sandbox
	var err error
	created := false
	if req.SandboxID != "" {
		if sb, err = svc.GetSandbox(ctx, req.SandboxID); err != nil {
			return nil, err
		}
	} else {
		spec := cove.SandboxSpec{
			Language: req.Language,
			Labels:   map[string]string{sandboxLabel: "fix"},
			// A safety net: the loop deletes the sandbox itself.
			TTL: b.timeout + 10*time.Minute,
		}
		if req.Execution != nil {
			spec.Limits = req.Execution.Limits
		}
		if sb, err = svc.CreateSandbox(ctx, spec); err != nil {
			return nil, err
		}
		created = true
	}
	cleanup := func() {
		if !created {
			return
		}
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := svc.DeleteSandbox(dctx, sb.ID); err != nil {
			a.log.Warn("deleting the sandbox of a fix loop", "sandbox", sb.ID, "err", err)
		}
	}
	for _, name := range slices.Sorted(maps.Keys(req.Files)) {
		if _, err = svc.WriteFile(ctx, sb.ID, name, bytes.NewReader(req.Files[name]), 0); err != nil {
			cleanup()
			return nil, err
		}
	}
	limits := sb.Limits
	if req.Execution != nil && req.Execution.Limits != (cove.Limits{}) {
		limits = req.Execution.Limits
	}
	d := newPromptData(req, limits, a.opts.OutputBudget)
	d.MaxSteps = b.steps
	system, err := render("system.md", d)
	if err != nil {
		cleanup()
		return nil, err
	}
	user, err := render("verify.md", d)
	if err != nil {
		cleanup()
		return nil, err
	}
	params := anthropic.MessageNewParams{
		Model:    a.model,
		System:   []anthropic.TextBlockParam{{Text: system}},
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(user))},
		Tools:    loopTools(),
		// Every turn sends the whole conversation again: cached, all but
		// its newest part is read back at a tenth of the price of input,
		// and sooner.
		CacheControl: anthropic.NewCacheControlEphemeralParam(),
	}
	l := &loop{a: a, svc: svc, req: req, sbID: sb.ID, bounds: b}
	pctx, cancel := context.WithCancel(ctx)
	// The time bound covers the whole loop, from the first request.
	tctx, tcancel := context.WithTimeout(pctx, b.timeout)
	params.MaxTokens = min(a.opts.MaxTokens, b.tokens)
	first, err := a.open(tctx, params)
	if err != nil {
		tcancel()
		cancel()
		cleanup()
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			err = cove.Errorf(cove.CodeTimeout, "the fix loop's time bound of %s passed before the Anthropic API answered", b.timeout)
		}
		return nil, err
	}
	a.log.Debug("fix loop started", "sandbox", sb.ID, "model", a.model, "max_steps", b.steps, "max_tokens", b.tokens, "timeout", b.timeout)
	return newStream(ctx, pctx, cancel, func(emit func(cove.AIEvent) bool) error {
		defer cleanup()
		defer tcancel()
		return l.loop(pctx, tctx, params, first, emit)
	}), nil
}

// loop runs Claude's turns, executing the tool calls of each, until the
// code is verified or a bound is reached, then emits the result. ctx is
// the stream's; tctx adds the time bound.
func (l *loop) loop(ctx, tctx context.Context, params anthropic.MessageNewParams, first *apiStream, emit func(cove.AIEvent) bool) error {
	a := l.a
	res := &cove.AIResult{Action: cove.AIFix, Model: a.model, Language: l.req.Language}
	var text strings.Builder
	// A new turn's text starts a new paragraph.
	newTurn := false
	onText := func(t string) bool {
		if newTurn {
			newTurn = false
			if s := text.String(); s != "" && !strings.HasSuffix(s, "\n\n") {
				sep := "\n\n"
				if strings.HasSuffix(s, "\n") {
					sep = "\n"
				}
				text.WriteString(sep)
				if !emit(cove.AIEvent{Type: cove.AIEventText, Text: sep}) {
					return false
				}
			}
		}
		text.WriteString(t)
		return emit(cove.AIEvent{Type: cove.AIEventText, Text: t})
	}
	timedOut := func() bool { return tctx.Err() != nil && ctx.Err() == nil }
	st := first
	var used, cacheRead int64
	for res.StopReason == "" {
		remaining := l.bounds.tokens - used
		if remaining <= 0 {
			res.StopReason = cove.AIStopMaxTokens
			break
		}
		params.MaxTokens = min(a.opts.MaxTokens, remaining)
		msg, err := a.turn(tctx, params, st, onText)
		st = nil
		if err != nil {
			if timedOut() {
				res.StopReason = cove.AIStopTimeout
				break
			}
			return err
		}
		if msg.Model != "" {
			res.Model = msg.Model
		}
		// Input read from or written to the cache is input all the same,
		// for the loop's bound and in the result.
		in := msg.Usage.InputTokens + msg.Usage.CacheCreationInputTokens + msg.Usage.CacheReadInputTokens
		res.InputTokens += in
		res.OutputTokens += msg.Usage.OutputTokens
		used += in + msg.Usage.OutputTokens
		cacheRead += msg.Usage.CacheReadInputTokens
		if msg.StopReason == anthropic.StopReasonMaxTokens {
			// The turn was cut at its token limit: a tool call in it may
			// be cut too (its input does not parse), and it cannot go back
			// to the API as it is. The loop ends here, running nothing the
			// cut turn asked for.
			res.StopReason = cove.AIStopMaxTokens
			break
		}
		params.Messages = append(params.Messages, msg.ToParam())

		var results []anthropic.ContentBlockParamUnion
		calls := 0
		for _, blk := range msg.Content {
			if blk.Type != "tool_use" {
				continue
			}
			calls++
			if len(res.Steps) >= l.bounds.steps {
				res.StopReason = cove.AIStopMaxSteps
				break
			}
			step, verified, err := l.execute(tctx, blk)
			if err != nil {
				if timedOut() {
					res.StopReason = cove.AIStopTimeout
					break
				}
				return err
			}
			step.N = len(res.Steps) + 1
			res.Steps = append(res.Steps, step)
			if !emit(cove.AIEvent{Type: cove.AIEventStep, Step: &step}) {
				return context.Cause(ctx)
			}
			newTurn = true
			results = append(results, anthropic.NewToolResultBlock(blk.ID, step.Output, step.IsError))
			if verified {
				res.StopReason = cove.AIStopVerified
				break
			}
		}
		switch {
		case res.StopReason != "":
		case calls == 0:
			// Claude ended its turn without asking for a run.
			res.StopReason = string(msg.StopReason)
		case timedOut():
			res.StopReason = cove.AIStopTimeout
		case len(res.Steps) >= l.bounds.steps:
			res.StopReason = cove.AIStopMaxSteps
		default:
			params.Messages = append(params.Messages, anthropic.NewUserMessage(results...))
		}
	}
	res.Text = text.String()
	res.Verified = res.StopReason == cove.AIStopVerified
	res.Code, res.Run, res.TestRun = l.code, l.run, l.testRun
	if res.Code == "" {
		// The last turn ended whole when the loop stopped between turns.
		whole := res.StopReason == cove.AIStopEndTurn || res.StopReason == cove.AIStopMaxSteps
		res.Code = lastCodeBlock(res.Text, l.req.Language, whole)
	}
	a.log.Info("fix loop done", "verified", res.Verified, "stop_reason", res.StopReason, "steps", len(res.Steps),
		"input_tokens", res.InputTokens, "cache_read_input_tokens", cacheRead, "output_tokens", res.OutputTokens)
	emit(cove.AIEvent{Type: cove.AIEventResult, Result: res})
	return nil
}
