package ai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"
	"github.com/anthropics/anthropic-sdk-go/packages/ssestream"

	"github.com/cove-sandbox/cove"
)

// apiStream is a streamed answer of the Messages API, watched for
// silence: its request ends when nothing came for the idle timeout.
type apiStream struct {
	*ssestream.Stream[anthropic.MessageStreamEventUnion]
	ctx    context.Context // the request's; its cause is errIdle after silence
	cancel context.CancelCauseFunc
	idle   time.Duration
	watch  *time.Timer
}

// alive notes that the API sent something.
func (st *apiStream) alive() { st.watch.Reset(st.idle) }

// end closes the stream and its request.
func (st *apiStream) end() {
	st.watch.Stop()
	st.Close()
	st.cancel(nil)
}

// errIdle ends a request to the API that went silent.
var errIdle = errors.New("the Anthropic API went silent")

// idleError says that the API sent nothing for too long, if that is why
// st's request ended.
func (a *Analyzer) idleError(ctx context.Context) error {
	if errors.Is(context.Cause(ctx), errIdle) {
		return cove.Errorf(cove.CodeTimeout, "the Anthropic API sent nothing for %s: try again", a.opts.IdleTimeout)
	}
	return nil
}

// startAnswer answers explain, review, optimize and fix (without verify):
// one streamed answer, the text as it comes, then the result with the
// findings or the code taken from it.
func (a *Analyzer) startAnswer(ctx context.Context, req cove.AIRequest) (cove.AIStream, error) {
	var limits cove.Limits
	if req.Execution != nil {
		limits = req.Execution.Limits
	}
	d := newPromptData(req, limits, a.opts.OutputBudget)
	system, err := render("system.md", d)
	if err != nil {
		return nil, err
	}
	user, err := render(string(req.Action)+".md", d)
	if err != nil {
		return nil, err
	}
	params := anthropic.MessageNewParams{
		Model:     a.model,
		MaxTokens: a.opts.MaxTokens,
		System:    []anthropic.TextBlockParam{{Text: system}},
		Messages:  []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(user))},
	}
	if req.Action == cove.AIReview {
		params.Tools = []anthropic.ToolUnionParam{findingsTool()}
	}
	pctx, cancel := context.WithCancel(ctx)
	first, err := a.open(pctx, params)
	if err != nil {
		cancel()
		return nil, err
	}
	a.log.Debug("analysis started", "action", req.Action, "model", a.model, "code_bytes", len(req.Code))
	return newStream(ctx, pctx, cancel, func(emit func(cove.AIEvent) bool) error {
		var text []byte
		msg, err := a.turn(pctx, params, first, func(t string) bool {
			text = append(text, t...)
			return emit(cove.AIEvent{Type: cove.AIEventText, Text: t})
		})
		if err != nil {
			return err
		}
		res := &cove.AIResult{
			Action: req.Action, Model: orDefault(msg.Model, a.model), Language: req.Language, Text: string(text),
			InputTokens: msg.Usage.InputTokens, OutputTokens: msg.Usage.OutputTokens, StopReason: string(msg.StopReason),
		}
		switch req.Action {
		case cove.AIReview:
			var called bool
			res.Findings, called = findingsOf(msg, res.Text)
			if called && res.StopReason == string(anthropic.StopReasonToolUse) {
				res.StopReason = cove.AIStopEndTurn
			}
		case cove.AIOptimize, cove.AIFix:
			res.Code = lastCodeBlock(res.Text, req.Language, endedWhole(msg.StopReason))
		}
		a.log.Info("analysis done", "action", req.Action, "model", res.Model, "input_tokens", res.InputTokens, "output_tokens", res.OutputTokens, "stop_reason", res.StopReason)
		emit(cove.AIEvent{Type: cove.AIEventResult, Result: res})
		return nil
	}), nil
}

// open sends a streamed request and waits for the API to accept it; the
// SDK retries statuses worth retrying, with backoff, before it gives up.
// A request (each attempt) that gets no answer within the idle timeout
// ends with a timeout, as does a stream that then goes silent for as long.
func (a *Analyzer) open(ctx context.Context, params anthropic.MessageNewParams) (*apiStream, error) {
	rctx, cancel := context.WithCancelCause(ctx)
	st := &apiStream{ctx: rctx, cancel: cancel, idle: a.opts.IdleTimeout}
	st.watch = time.AfterFunc(st.idle, func() { cancel(errIdle) })
	attempts := 0
	var last *http.Response
	watch := option.WithMiddleware(func(r *http.Request, next option.MiddlewareNext) (*http.Response, error) {
		attempts++
		st.alive()
		res, err := next(r)
		last = res
		if attempts <= a.opts.MaxRetries && rctx.Err() == nil && sdkRetries(res, err) {
			a.retrying(ctx, a.failedAttempt(res, err), attempts)
		}
		return res, err
	})
	st.Stream = a.client.Messages.NewStreaming(rctx, params, watch)
	if err := st.Err(); err != nil {
		st.end()
		if ierr := a.idleError(rctx); ierr != nil && ctx.Err() == nil {
			return nil, ierr
		}
		return nil, a.apiError(ctx, err, max(0, attempts-1))
	}
	if last != nil && !isEventStream(last) {
		// A proxy or a gateway that answers in the API's place (a login
		// page, a "bad gateway" page) sends something else, which the SDK
		// reads as a stream without events.
		st.end()
		return nil, a.notMessagesAPI(fmt.Sprintf("%d, %s", last.StatusCode, orDefault(last.Header.Get("Content-Type"), "no content type")))
	}
	st.alive()
	return st, nil
}

// sdkRetries reports whether the SDK tries a request again after this
// answer of an attempt, as its own rule says (a broken connection, 408,
// 409, 429, 5xx, unless x-should-retry says otherwise).
func sdkRetries(res *http.Response, err error) bool {
	if res == nil {
		return err != nil
	}
	switch res.Header.Get("X-Should-Retry") {
	case "true":
		return true
	case "false":
		return false
	}
	s := res.StatusCode
	return s == http.StatusRequestTimeout || s == http.StatusConflict || s == http.StatusTooManyRequests || s >= 500
}

// failedAttempt says in a few words how an attempt that is retried
// failed.
func (a *Analyzer) failedAttempt(res *http.Response, err error) string {
	if res == nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return "the Anthropic API did not answer in time"
		}
		return fmt.Sprintf("cannot reach the Anthropic API at %s: %s", a.baseURL(), netCause(err))
	}
	switch s := res.StatusCode; {
	case s == http.StatusTooManyRequests:
		return "the Anthropic API is rate limiting this API key (429)"
	case s == 529:
		return "the Anthropic API is overloaded (529)"
	case s == http.StatusRequestTimeout || s == http.StatusGatewayTimeout:
		return fmt.Sprintf("the Anthropic API timed out (%d)", s)
	default:
		return fmt.Sprintf("the Anthropic API failed (%d)", s)
	}
}

// retrying tells the notice function of ctx, else the log, that the
// attempt-th try of a request failed as what says and that it is tried
// again.
func (a *Analyzer) retrying(ctx context.Context, what string, attempt int, args ...any) {
	args = append([]any{"reason", what, "attempt", attempt, "retries", a.opts.MaxRetries}, args...)
	if notice := retryNotice(ctx); notice != nil {
		notice(fmt.Sprintf("%s; retrying (%d of %d)", what, attempt, a.opts.MaxRetries))
		a.log.Debug("the Anthropic API failed; retrying", args...)
		return
	}
	a.log.Warn("the Anthropic API failed; retrying", args...)
}

// isEventStream reports whether res is a stream of server-sent events,
// as the API answers a streamed request.
func isEventStream(res *http.Response) bool {
	ct, _, _ := mime.ParseMediaType(res.Header.Get("Content-Type"))
	return ct == "text/event-stream"
}

// notMessagesAPI says that what came from the API's address is not an
// answer of the Messages API, which a proxy or gateway there may cause.
func (a *Analyzer) notMessagesAPI(detail string) error {
	return cove.Errorf(cove.CodeUnavailable, "what %s sent is not a Messages API answer (%s): check ANTHROPIC_BASE_URL, or the proxy or gateway there", a.baseURL(), oneLine(detail))
}

// errCutOff is a stream that ended before the answer did.
var errCutOff = cove.Errorf(cove.CodeUnavailable, "the Anthropic API's answer broke off before its end: try again")

// turn reads one streamed answer, from st when it is already open, and
// hands its text to onText as it comes (false from onText stops it). A
// stream that fails before any text came is tried again with backoff
// when the failure is worth it (overloaded, rate limited).
func (a *Analyzer) turn(ctx context.Context, params anthropic.MessageNewParams, st *apiStream, onText func(string) bool) (*anthropic.Message, error) {
	for attempt := 0; ; attempt++ {
		if st == nil {
			var err error
			if st, err = a.open(ctx, params); err != nil {
				return nil, err
			}
		}
		var msg anthropic.Message
		emitted, started := false, false
		var err error
		for st.Next() {
			st.alive()
			ev := st.Current()
			started = started || ev.Type == "message_start"
			if aerr := msg.Accumulate(ev); aerr != nil {
				err = a.notMessagesAPI(aerr.Error())
				break
			}
			if ev.Type == "content_block_delta" && ev.Delta.Type == "text_delta" && ev.Delta.Text != "" {
				emitted = true
				if !onText(ev.Delta.Text) {
					st.end()
					return nil, context.Cause(ctx)
				}
			}
		}
		if err == nil {
			err = st.Err()
			if undecodable(err) {
				// An event that is not JSON, or not of the API's shapes.
				err = a.notMessagesAPI(err.Error())
			}
		}
		st.end()
		if ierr := a.idleError(st.ctx); ierr != nil && ctx.Err() == nil {
			err = ierr
		}
		st = nil
		if err == nil && msg.StopReason == "" {
			err = errCutOff
			if !started {
				err = a.notMessagesAPI("a stream without a message")
			}
		}
		if err == nil {
			return &msg, nil
		}
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		if emitted || attempt >= a.opts.MaxRetries || !retryable(err) {
			if _, ok := err.(*cove.Error); ok {
				return nil, err
			}
			return nil, a.apiError(ctx, err, attempt)
		}
		wait := a.opts.RetryBackoff << attempt
		a.retrying(ctx, streamFailure(err)+" before its answer began", attempt+1, "wait", wait, "err", oneLine(cove.ErrorMessage(a.apiError(ctx, err, attempt))))
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// endedWhole reports whether an answer that stopped for reason ended
// where the model meant it to, rather than cut short (max_tokens,
// refusal, pause_turn, model_context_window_exceeded).
func endedWhole(reason anthropic.StopReason) bool {
	switch reason {
	case anthropic.StopReasonEndTurn, anthropic.StopReasonStopSequence, anthropic.StopReasonToolUse:
		return true
	}
	return false
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// undecodable reports whether err is the SDK's failure to decode an
// event of the stream.
func undecodable(err error) bool {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	return errors.As(err, &se) || errors.As(err, &te)
}
