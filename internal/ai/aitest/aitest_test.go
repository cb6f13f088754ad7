package aitest_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	"github.com/anthropics/anthropic-sdk-go/option"

	"github.com/cove-sandbox/cove/internal/ai/aitest"
)

func client(s *aitest.Server, key string) anthropic.Client {
	return anthropic.NewClient(option.WithoutEnvironmentDefaults(), option.WithBaseURL(s.URL), option.WithAPIKey(key), option.WithMaxRetries(0))
}

func params(tools ...anthropic.ToolUnionParam) anthropic.MessageNewParams {
	return anthropic.MessageNewParams{
		Model: "claude-test", MaxTokens: 100,
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))},
		Tools:    tools,
	}
}

var runTool = anthropic.ToolUnionParam{OfTool: &anthropic.ToolParam{Name: "run", InputSchema: anthropic.ToolInputSchemaParam{Properties: map[string]any{"x": map[string]any{"type": "string"}}}}}

// TestSDKReadsTheFake checks that the official SDK reads the fake's
// answers, plain and streamed, as it reads the real API's: text, tool
// calls with their input (streamed as partial JSON), stop reason, usage.
func TestSDKReadsTheFake(t *testing.T) {
	reply := aitest.Reply{Text: "Hello, wörld: ünïcode ✓", ToolUses: []aitest.ToolUse{{Name: "run", Input: map[string]any{"x": "ä€𝄞 and \"quotes\""}}}, OutputTokens: 7}
	s := aitest.New(t, func(*aitest.Request) aitest.Reply { return reply })
	c := client(s, "k")

	msg, err := c.Messages.New(context.Background(), params(runTool))
	if err != nil {
		t.Fatal(err)
	}
	check := func(how string, m *anthropic.Message) {
		t.Helper()
		if len(m.Content) != 2 || m.Content[0].Text != reply.Text || m.Content[1].Type != "tool_use" || m.Content[1].Name != "run" ||
			string(m.Content[1].Input) != `{"x":"ä€𝄞 and \"quotes\""}` || m.StopReason != "tool_use" || m.Usage.OutputTokens != 7 || m.Usage.InputTokens == 0 {
			t.Errorf("%s: %+v", how, m)
		}
	}
	check("plain", msg)

	st := c.Messages.NewStreaming(context.Background(), params(runTool))
	var acc anthropic.Message
	var deltas []string
	for st.Next() {
		ev := st.Current()
		if err := acc.Accumulate(ev); err != nil {
			t.Fatal(err)
		}
		if ev.Type == "content_block_delta" && ev.Delta.Type == "text_delta" {
			deltas = append(deltas, ev.Delta.Text)
		}
	}
	if err := st.Err(); err != nil {
		t.Fatal(err)
	}
	check("streamed", &acc)
	if len(deltas) < 3 || strings.Join(deltas, "") != reply.Text {
		t.Errorf("deltas %q", deltas)
	}
	reqs := s.Requests()
	if len(reqs) != 2 || reqs[0].Stream || !reqs[1].Stream || reqs[1].Model != "claude-test" || reqs[1].Tool("run") == nil || reqs[1].FirstUserText() != "hi" {
		t.Errorf("requests %+v", reqs)
	}
}

// TestFakeErrors checks the error answers: the SDK sees the API's error
// type and status, in an answer and in the middle of a stream.
func TestFakeErrors(t *testing.T) {
	s := aitest.New(t, aitest.Script(
		aitest.APIError(529, "overloaded_error", "Overloaded"),
		aitest.Reply{Text: "partial", StreamError: &aitest.Error{Type: "overloaded_error", Message: "Overloaded"}},
	))
	s.Key = "right"
	c := client(s, "wrong")
	_, err := c.Messages.New(context.Background(), params())
	var ae *anthropic.Error
	if !errors.As(err, &ae) || ae.StatusCode != 401 || ae.Type() != "authentication_error" {
		t.Fatalf("wrong key: %v", err)
	}
	c = client(s, "right")
	_, err = c.Messages.New(context.Background(), params())
	if !errors.As(err, &ae) || ae.StatusCode != 529 || ae.Type() != "overloaded_error" {
		t.Fatalf("overloaded: %v", err)
	}
	st := c.Messages.NewStreaming(context.Background(), params())
	for st.Next() {
	}
	if !errors.As(st.Err(), &ae) || ae.Type() != "overloaded_error" {
		t.Fatalf("stream error: %v", st.Err())
	}
}

// TestFakeRetryAfter checks that a 429 says when to retry in the header
// the API uses, retry-after in seconds (not retry-after-ms, which the SDK
// reads too but the API does not send), and that the SDK waits that long.
func TestFakeRetryAfter(t *testing.T) {
	s := aitest.New(t, aitest.Script(
		aitest.Reply{Error: &aitest.Error{Status: 429, Type: "rate_limit_error", Message: "slow down", RetryAfter: 300 * time.Millisecond}},
		aitest.Text("ok"),
	))
	var first http.Header
	c := anthropic.NewClient(option.WithoutEnvironmentDefaults(), option.WithBaseURL(s.URL), option.WithAPIKey("k"), option.WithMaxRetries(1),
		option.WithMiddleware(func(r *http.Request, next option.MiddlewareNext) (*http.Response, error) {
			res, err := next(r)
			if err == nil && first == nil {
				first = res.Header.Clone()
			}
			return res, err
		}))
	start := time.Now()
	if _, err := c.Messages.New(context.Background(), params()); err != nil {
		t.Fatal(err)
	}
	if first.Get("Retry-After") != "0.3" || first.Get("Retry-After-Ms") != "" {
		t.Errorf("headers %v", first)
	}
	if took := time.Since(start); took < 300*time.Millisecond {
		t.Errorf("the SDK retried after %s", took)
	}
}

// TestFakeChecksRequests checks that the fake refuses what the real API
// refuses: a tool result that answers no tool call.
func TestFakeChecksRequests(t *testing.T) {
	s := aitest.New(t, func(*aitest.Request) aitest.Reply { return aitest.Text("ok") })
	c := client(s, "k")
	p := params(runTool)
	p.Messages = append(p.Messages,
		anthropic.NewAssistantMessage(anthropic.NewTextBlock("calling")),
		anthropic.NewUserMessage(anthropic.NewToolResultBlock("toolu_nope", "out", false)))
	_, err := c.Messages.New(context.Background(), p)
	var ae *anthropic.Error
	if !errors.As(err, &ae) || ae.StatusCode != 400 || !strings.Contains(ae.RawJSON(), "tool_use_id") {
		t.Fatalf("%v", err)
	}
}

// TestFakeCachesPrompts checks the fake's prompt caching, as the SDK sees
// it: a request with cache_control writes its prompt to the cache, and a
// later one that starts with that prompt reads it from there, streamed or
// not; a request without it caches nothing.
func TestFakeCachesPrompts(t *testing.T) {
	s := aitest.New(t, func(*aitest.Request) aitest.Reply { return aitest.Reply{Text: "ok"} })
	c := client(s, "k")
	p := params()
	p.CacheControl = anthropic.NewCacheControlEphemeralParam()
	first, err := c.Messages.New(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	if u := first.Usage; u.CacheCreationInputTokens == 0 || u.CacheReadInputTokens != 0 || u.InputTokens != 0 {
		t.Errorf("first request: %+v", u)
	}
	p.Messages = append(p.Messages, first.ToParam(), anthropic.NewUserMessage(anthropic.NewTextBlock("and then?")))
	st := c.Messages.NewStreaming(context.Background(), p)
	var acc anthropic.Message
	for st.Next() {
		if err := acc.Accumulate(st.Current()); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Err(); err != nil {
		t.Fatal(err)
	}
	if u := acc.Usage; u.CacheReadInputTokens != first.Usage.CacheCreationInputTokens || u.CacheCreationInputTokens == 0 {
		t.Errorf("second request: %+v, after the first's %+v", u, first.Usage)
	}
	if reqs := s.Requests(); reqs[0].CacheControl == nil || reqs[0].CacheControl.Type != "ephemeral" {
		t.Errorf("cache_control not seen: %s", reqs[0].Body)
	}
	plain, err := c.Messages.New(context.Background(), params())
	if err != nil {
		t.Fatal(err)
	}
	if u := plain.Usage; u.CacheCreationInputTokens != 0 || u.CacheReadInputTokens != 0 || u.InputTokens == 0 {
		t.Errorf("request without cache_control: %+v", u)
	}
}
