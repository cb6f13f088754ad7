package ai

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/anthropics/anthropic-sdk-go"

	"github.com/cove-sandbox/cove"
)

// NoKeyError is the answer of an analyzer without an API key. Errors:
// unavailable, naming the variable to set.
func NoKeyError() error {
	return cove.Errorf(cove.CodeUnavailable, "code analysis needs an Anthropic API key: set ANTHROPIC_API_KEY in the environment of cove (for a server, where `cove serve` runs)")
}

// apiError classifies a failure of the Messages API as a cove error whose
// message says what happened and what to do, in one line. retries is how
// many times the request was retried before it failed.
func (a *Analyzer) apiError(ctx context.Context, err error, retries int) error {
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil {
		return cerr
	}
	var ae *anthropic.Error
	if errors.As(err, &ae) {
		return a.classifyAPIError(ae, retries)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return cove.Errorf(cove.CodeTimeout, "the Anthropic API did not answer in time")
	}
	var ne net.Error
	var oe *net.OpError
	if errors.As(err, &oe) || errors.As(err, &ne) {
		return &cove.Error{Code: cove.CodeUnavailable, Message: fmt.Sprintf("cannot reach the Anthropic API at %s: %s", a.baseURL(), netCause(err)), Err: err}
	}
	return &cove.Error{Code: cove.CodeUnavailable, Message: "the Anthropic API request failed: " + oneLine(err.Error()), Err: err}
}

// classifyAPIError maps an error answer of the API (or an error event in
// its stream) by its type, else by its status.
func (a *Analyzer) classifyAPIError(ae *anthropic.Error, retries int) error {
	typ := string(ae.Type())
	msg := apiMessage(ae)
	status := ae.StatusCode
	what := typ
	if status >= 300 {
		what = fmt.Sprintf("%d %s", status, typ)
	}
	what = strings.TrimSpace(what)
	detail := ""
	if msg != "" {
		detail = ": " + msg
	}
	tried := ""
	if retries > 0 {
		tried = fmt.Sprintf(" (tried %d times)", retries+1)
	}
	switch {
	case typ == "authentication_error" || (typ == "" && status == http.StatusUnauthorized):
		return cove.Errorf(cove.CodeUnavailable, "the Anthropic API refused the API key (%s%s): check ANTHROPIC_API_KEY", what, detail)
	case typ == "permission_error" || (typ == "" && status == http.StatusForbidden):
		return cove.Errorf(cove.CodeUnavailable, "the Anthropic API key may not use this (%s%s): check ANTHROPIC_API_KEY and COVE_AI_MODEL", what, detail)
	case typ == "billing_error":
		return cove.Errorf(cove.CodeUnavailable, "the Anthropic account cannot be billed (%s%s)", what, detail)
	case typ == "rate_limit_error" || (typ == "" && status == http.StatusTooManyRequests):
		err := cove.Errorf(cove.CodeQuotaExceeded, "the Anthropic API is rate limiting this API key (%s%s)%s: try again in a minute", what, detail, tried)
		err.RetryAfter = time.Minute // the API's rate limits are per minute
		return err
	case typ == "overloaded_error" || (typ == "" && status == 529):
		return cove.Errorf(cove.CodeUnavailable, "the Anthropic API is overloaded (%s%s)%s: try again in a few minutes", what, detail, tried)
	case typ == "not_found_error" || (typ == "" && status == http.StatusNotFound):
		return cove.Errorf(cove.CodeUnavailable, "the Anthropic API does not know the model %q or the route (%s%s): check COVE_AI_MODEL and ANTHROPIC_BASE_URL", a.model, what, detail)
	case typ == "request_too_large" || status == http.StatusRequestEntityTooLarge:
		return cove.Errorf(cove.CodeInvalid, "the request is too large for the Anthropic API (%s%s): analyze less code or output", what, detail)
	case typ == "invalid_request_error" || (typ == "" && status == http.StatusBadRequest):
		return cove.Errorf(cove.CodeInvalid, "the Anthropic API refused the request (%s%s)", what, detail)
	case typ == "timeout_error" || status == http.StatusGatewayTimeout || status == http.StatusRequestTimeout:
		return cove.Errorf(cove.CodeTimeout, "the Anthropic API timed out (%s%s)%s: try again", what, detail, tried)
	}
	if what == "" {
		what = "an unknown error"
	}
	return cove.Errorf(cove.CodeUnavailable, "the Anthropic API failed (%s%s)%s: try again later", what, detail, tried)
}

// apiMessage returns the message of an API error body
// ({"type": "error", "error": {"type": ..., "message": ...}}), in one line.
func apiMessage(ae *anthropic.Error) string {
	var body struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	raw := ae.RawJSON()
	if json.Unmarshal([]byte(raw), &body) == nil && body.Error.Message != "" {
		return oneLine(body.Error.Message)
	}
	if raw != "" && !strings.HasPrefix(strings.TrimSpace(raw), "{") {
		return oneLine(raw)
	}
	return ""
}

// retryable reports whether an error in the middle of a stream is worth
// a new attempt (the SDK retries failed requests itself, not streams
// that fail after they began).
func retryable(err error) bool {
	var ae *anthropic.Error
	if !errors.As(err, &ae) {
		return false
	}
	switch string(ae.Type()) {
	case "overloaded_error", "rate_limit_error", "api_error", "timeout_error":
		return true
	}
	return false
}

// streamFailure says in a few words how a stream that is retried
// failed (retryable's errors).
func streamFailure(err error) string {
	var ae *anthropic.Error
	if errors.As(err, &ae) {
		switch string(ae.Type()) {
		case "overloaded_error":
			return "the Anthropic API is overloaded"
		case "rate_limit_error":
			return "the Anthropic API is rate limiting this API key"
		case "timeout_error":
			return "the Anthropic API timed out"
		}
	}
	return "the Anthropic API failed"
}

func netCause(err error) string {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		return oneLine(oe.Err.Error())
	}
	return oneLine(err.Error())
}

// oneLine flattens s and bounds its length, for error messages.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}
