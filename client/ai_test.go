package client_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/ai"
	"github.com/cove-sandbox/cove/internal/ai/aitest"
	"github.com/cove-sandbox/cove/internal/httpapi"
	"github.com/cove-sandbox/cove/internal/runtime/native/nativetest"
	"github.com/cove-sandbox/cove/internal/service"
	"github.com/cove-sandbox/cove/internal/wire"
)

// newAIEnv starts a real server whose analysis talks to the fake API
// (key "" leaves the server without an Anthropic key).
func newAIEnv(t *testing.T, s *aitest.Server, key string) *env {
	t.Helper()
	be, _ := nativetest.New(t)
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	a := ai.New(ai.Options{APIKey: key, BaseURL: s.URL, MaxRetries: 1, RetryBackoff: time.Millisecond, Logger: log})
	svc := service.New(be, service.Options{Analyzer: a, Logger: log})
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	secret := randomSecret()
	if err := svc.EnsureAdminKey(ctx, secret); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httpapi.NewHTTPServer("", recordRoutes(httpapi.New(svc, httpapi.Options{Auth: svc, Logger: log})), log)
	go srv.Serve(ln)
	e := &env{t: t, svc: svc, url: "http://" + ln.Addr().String(), adminKey: secret}
	e.admin = e.client(secret)
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		srv.Close()
		svc.Close(context.Background())
	})
	return e
}

// sseEvent is one server-sent event.
type sseEvent struct {
	name string
	data wire.AIEvent
}

// readSSE reads the next event of an SSE answer.
func readSSE(t *testing.T, br *bufio.Reader) (sseEvent, error) {
	var ev sseEvent
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return ev, err
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, "event: "):
			ev.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev.data); err != nil {
				t.Fatalf("data %q: %v", line, err)
			}
		case line == "" && ev.name != "":
			return ev, nil
		}
	}
}

// TestAnalyzeSSE drives POST /v1/ai/explain as a browser does: the run's
// result goes in as /v1/run answered it, and the text comes out as
// server-sent events, each as soon as Claude wrote it.
func TestAnalyzeSSE(t *testing.T) {
	hold := make(chan struct{})
	chunks := []string{"The program ", "prints ", "its token ", "and exits 2."}
	s := aitest.New(t, aitest.Script(aitest.Reply{Chunks: chunks, Hold: hold}))
	e := newAIEnv(t, s, "sk-test")
	tok := "tok" + strings.ToLower(rand.Text()[:10])
	code := "import sys\nprint('" + tok + "')\nsys.exit(2)\n"
	run := e.do("POST", "/v1/run", e.adminKey, []byte(`{"language":"python","code":`+quote(code)+`}`))
	var res wire.Result
	if err := json.NewDecoder(run.Body).Decode(&res); err != nil || res.ExitCode != 2 {
		t.Fatalf("run: %v %+v", err, res)
	}
	body, _ := json.Marshal(wire.AIRequest{Language: "python", Code: code, Execution: &res})
	resp := e.do("POST", "/v1/ai/explain", e.adminKey, body, "Content-Type", "application/json")
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("%d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	br := bufio.NewReader(resp.Body)
	// The first chunks arrive while the answer is held unfinished.
	for _, want := range chunks[:len(chunks)-1] {
		ev, err := readSSE(t, br)
		if err != nil || ev.name != "text" || ev.data.Text != want {
			t.Fatalf("got %+v %v, want text %q", ev, err, want)
		}
	}
	close(hold)
	ev, err := readSSE(t, br)
	if err != nil || ev.data.Text != chunks[len(chunks)-1] {
		t.Fatalf("%+v %v", ev, err)
	}
	ev, err = readSSE(t, br)
	if err != nil || ev.name != "result" || ev.data.Result == nil || ev.data.Result.Text != strings.Join(chunks, "") {
		t.Fatalf("%+v %v", ev, err)
	}
	if _, err := readSSE(t, br); !errors.Is(err, io.EOF) {
		t.Fatalf("after the result: %v", err)
	}
	user := s.Requests()[0].FirstUserText()
	for _, want := range []string{tok, "exit code: 2", "verdict: exit_nonzero", "```python\nimport sys"} {
		if !strings.Contains(user, want) {
			t.Errorf("the prompt lacks %q:\n%s", want, user)
		}
	}
	if !strings.Contains(s.Requests()[0].SystemText(), "memory 512 MiB") {
		t.Errorf("system prompt without the run's limits")
	}
}

func quote(s string) string { b, _ := json.Marshal(s); return string(b) }

// TestAnalyzeVerifySDK runs a verified fix through the SDK, as a user's
// key: the fake model's code runs in a real sandbox on the server, the
// next request carries its real output, the steps stream, and the
// sandbox is gone afterwards.
func TestAnalyzeVerifySDK(t *testing.T) {
	tok := "tok" + strings.ToLower(rand.Text()[:10])
	s := aitest.New(t, nil)
	s.SetHandler(func(r *aitest.Request) aitest.Reply {
		if len(r.Messages) == 1 {
			return aitest.Reply{Text: "Printing the token.", ToolUses: []aitest.ToolUse{{Name: cove.AIToolRunCode, Input: map[string]any{"code": "print('" + tok + "'[::-1])\nraise SystemExit(4)\n"}}}}
		}
		got := r.ToolResults()[0].ResultText()
		rev := []byte(tok)
		for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
			rev[i], rev[j] = rev[j], rev[i]
		}
		if !strings.Contains(got, string(rev)) || !strings.Contains(got, "exit code 4") {
			t.Errorf("the tool result lacks the real output: %q", got)
		}
		return aitest.Reply{Text: "Now without the exit.", ToolUses: []aitest.ToolUse{{Name: cove.AIToolRunCode, Input: map[string]any{"code": "print('" + tok + "')\n"}}}}
	})
	e := newAIEnv(t, s, "sk-test")
	c, _ := e.newKey(cove.Quota{})
	st, err := c.Analyze(ctxT(t), cove.AIRequest{Action: cove.AIFix, Language: "python", Code: "raise SystemExit(4)\n", Verify: true, MaxSteps: 4})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	var res *cove.AIResult
	for {
		ev, err := st.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(types) == 0 || types[len(types)-1] != string(ev.Type) {
			types = append(types, string(ev.Type))
		}
		if ev.Type == cove.AIEventStep && (ev.Step.Run == nil || ev.Step.N == 0) {
			t.Errorf("step %+v", ev.Step)
		}
		res = ev.Result
	}
	st.Close()
	if strings.Join(types, ",") != "text,step,text,step,result" {
		t.Errorf("events %v", types)
	}
	if res == nil || !res.Verified || res.Run == nil || res.Run.Stdout != tok+"\n" || len(res.Steps) != 2 || res.Steps[0].Run.ExitCode != 4 {
		t.Fatalf("result %+v", res)
	}
	list, err := e.admin.ListSandboxes(ctxT(t), cove.ListOptions{})
	if err != nil || len(list.Sandboxes) != 0 {
		t.Errorf("sandboxes left: %v %+v", err, list)
	}
}

// TestAnalyzeErrorsSDK checks errors before the stream (no key on the
// server, a key the API refuses) and after it began, through the SDK.
func TestAnalyzeErrorsSDK(t *testing.T) {
	s := aitest.New(t, aitest.Script(
		aitest.APIError(401, "authentication_error", "invalid x-api-key"),
		aitest.Reply{Text: "So far", StreamError: &aitest.Error{Type: "overloaded_error", Message: "Overloaded"}},
	))
	req := cove.AIRequest{Action: cove.AIReview, Language: "javascript", Code: "console.log(1)"}

	off := newAIEnv(t, s, "")
	_, err := off.admin.Analyze(ctxT(t), req)
	if cove.ErrorCode(err) != cove.CodeUnavailable || !strings.Contains(cove.ErrorMessage(err), "set ANTHROPIC_API_KEY") {
		t.Errorf("no key: %v", err)
	}

	e := newAIEnv(t, s, "sk-wrong")
	_, err = e.admin.Analyze(ctxT(t), req)
	if cove.ErrorCode(err) != cove.CodeUnavailable || !strings.Contains(cove.ErrorMessage(err), "refused the API key (401 authentication_error: invalid x-api-key)") {
		t.Errorf("refused key: %v", err)
	}
	st, err := e.admin.Analyze(ctxT(t), req)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var text string
	for {
		ev, err := st.Next()
		if err != nil {
			if cove.ErrorCode(err) != cove.CodeUnavailable || !strings.Contains(cove.ErrorMessage(err), "overloaded") || text != "So far" {
				t.Errorf("%q then %v", text, err)
			}
			break
		}
		text += ev.Text
	}
	// The key is never sent to cove's clients.
	for _, r := range s.Requests() {
		if r.Header.Get("X-Api-Key") != "sk-wrong" {
			t.Errorf("key %q", r.Header.Get("X-Api-Key"))
		}
	}
}

// TestAnalyzeCancelSDK checks that cancelling the caller's context ends
// Next with the context's error, and the server's request to the API.
func TestAnalyzeCancelSDK(t *testing.T) {
	s := aitest.New(t, func(*aitest.Request) aitest.Reply {
		return aitest.Reply{Text: strings.Repeat("slowly ", 100), Delay: 50 * time.Millisecond}
	})
	e := newAIEnv(t, s, "sk-test")
	ctx, cancel := context.WithCancel(ctxT(t))
	st, err := e.admin.Analyze(ctx, cove.AIRequest{Action: cove.AIExplain, Language: "bash", Code: "echo hi"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Next(); err != nil {
		t.Fatal(err)
	}
	cancel()
	if _, err := st.Next(); !errors.Is(err, context.Canceled) {
		t.Errorf("after cancel: %v", err)
	}
	st.Close()
	select {
	case <-s.Requests()[0].Done:
	case <-time.After(5 * time.Second):
		t.Fatal("the server's request to the API outlived the client")
	}
}

// TestAnalyzeOtherKeysSandbox checks that a fix loop cannot be pointed at
// another key's sandbox: it is not_found, before anything is asked.
func TestAnalyzeOtherKeysSandbox(t *testing.T) {
	s := aitest.New(t, aitest.Script())
	e := newAIEnv(t, s, "sk-test")
	alice, _ := e.newKey(cove.Quota{})
	bob, _ := e.newKey(cove.Quota{})
	sb := e.sandbox(alice, cove.SandboxSpec{})
	_, err := bob.Analyze(ctxT(t), cove.AIRequest{Action: cove.AIFix, Language: "python", Code: "print(1)", Verify: true, SandboxID: sb.ID})
	if cove.ErrorCode(err) != cove.CodeNotFound {
		t.Fatalf("bob used alice's sandbox: %v", err)
	}
	if len(s.Requests()) != 0 {
		t.Errorf("%d requests to the API", len(s.Requests()))
	}
	if _, err := alice.GetSandbox(ctxT(t), sb.ID); err != nil {
		t.Errorf("alice's sandbox: %v", err)
	}
}
