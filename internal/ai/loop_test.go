package ai_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/ai"
	"github.com/cove-sandbox/cove/internal/ai/aitest"
	"github.com/cove-sandbox/cove/internal/runtime/native/nativetest"
	"github.com/cove-sandbox/cove/internal/service"
)

// newService returns the real service on the native backend, with an
// analyzer that talks to the fake API; it skips where native sandboxes
// cannot run.
func newService(t *testing.T, s *aitest.Server, tweak ...func(*ai.Options)) *service.Service {
	t.Helper()
	be, _ := nativetest.New(t)
	svc := service.New(be, service.Options{Defaults: cove.DefaultLimits(), Analyzer: newAnalyzer(s, tweak...)})
	t.Cleanup(func() { svc.Close(context.Background()) })
	return svc
}

func token() string { return "tok" + strings.ToLower(rand.Text()[:12]) }

// turn returns the index of a request's turn: 0 for the first request of
// a conversation, 1 after one tool round, and so on.
func turn(r *aitest.Request) int { return len(r.Messages) / 2 }

// sandboxes lists the sandboxes of the service.
func sandboxes(t *testing.T, svc cove.Service) []*cove.Sandbox {
	t.Helper()
	l, err := svc.ListSandboxes(context.Background(), cove.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return l.Sandboxes
}

// fixFailingRun runs the verified fix loop on divCode and its failing run,
// and returns what its stream gave; a failed request or stream fails t.
func fixFailingRun(t *testing.T, svc *service.Service) drained {
	t.Helper()
	st, err := svc.Analyze(t.Context(), cove.AIRequest{Action: cove.AIFix, Language: "python", Code: divCode, Execution: failingRun(), Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	d := drain(st)
	if d.err != nil {
		t.Fatal(d.err)
	}
	return d
}

// TestFixVerifyRunsToolsForReal drives the fix loop through the service:
// every tool call runs in a real sandbox, and the next request carries
// what really happened (a random token the code printed, a file's
// content, an exit code).
func TestFixVerifyRunsToolsForReal(t *testing.T) {
	tok := token()
	s := aitest.New(t, nil)
	s.SetHandler(func(r *aitest.Request) aitest.Reply {
		switch turn(r) {
		case 0:
			for _, name := range []string{cove.AIToolRunCode, cove.AIToolRunCommand, cove.AIToolWriteFile, cove.AIToolReadFile} {
				if tool := r.Tool(name); tool == nil || !strings.Contains(string(tool.InputSchema), `"type":"object"`) {
					t.Errorf("tool %s: %+v", name, tool)
				}
			}
			if !strings.Contains(string(r.Tool(cove.AIToolRunCode).InputSchema), `"required":["code"]`) {
				t.Errorf("run_code schema %s", r.Tool(cove.AIToolRunCode).InputSchema)
			}
			if u := r.FirstUserText(); !strings.Contains(u, "ZeroDivisionError") || !strings.Contains(u, "at most 8 tool calls") || !strings.Contains(u, "to main.py") {
				t.Errorf("first message:\n%s", u)
			}
			return aitest.Reply{Text: "The cause: n is 0 on line 2.", ToolUses: []aitest.ToolUse{
				{Name: cove.AIToolWriteFile, Input: map[string]any{"path": "data/in.txt", "content": tok}},
				{Name: cove.AIToolRunCommand, Input: map[string]any{"command": "cat data/in.txt; echo; id -u; pwd"}},
				{Name: cove.AIToolRunCode, Input: map[string]any{"code": "import sys\nprint(open('data/in.txt').read() + '-first')\nsys.exit(3)\n"}},
			}}
		case 1:
			res := r.ToolResults()
			if len(res) != 3 {
				t.Errorf("%d tool results", len(res))
				return aitest.APIError(400, "invalid_request_error", "bad turn")
			}
			if txt := res[0].ResultText(); res[0].IsError || !strings.Contains(txt, "wrote 32 bytes to") && !strings.Contains(txt, "to data/in.txt") {
				t.Errorf("write_file result %q", txt)
			}
			if txt := res[1].ResultText(); res[1].IsError || !strings.Contains(txt, tok) || !strings.Contains(txt, "/workspace") || !strings.Contains(txt, "verdict ok") {
				t.Errorf("run_command result %q", txt)
			}
			if txt := res[2].ResultText(); !res[2].IsError || !strings.Contains(txt, tok+"-first") || !strings.Contains(txt, "verdict exit_nonzero, exit code 3") {
				t.Errorf("run_code result %q", txt)
			}
			return aitest.Reply{Text: "Exit status 3 comes from sys.exit; drop it.", ToolUses: []aitest.ToolUse{
				{Name: cove.AIToolReadFile, Input: map[string]any{"path": "data/in.txt"}},
				{Name: cove.AIToolRunCode, Input: map[string]any{"code": "print(open('data/in.txt').read()[::-1])\n"}},
			}}
		}
		t.Errorf("a turn after the verified run")
		return aitest.APIError(500, "api_error", "no more turns")
	})
	svc := newService(t, s)
	st, err := svc.Analyze(t.Context(), cove.AIRequest{
		Action: cove.AIFix, Language: "py", Code: divCode, Execution: failingRun(), Verify: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	d := drain(st)
	if d.err != nil {
		t.Fatal(d.err)
	}
	res := d.result
	if !res.Verified || res.StopReason != cove.AIStopVerified || len(res.Steps) != 5 || len(d.steps) != 5 {
		t.Fatalf("verified %v stop %q steps %d", res.Verified, res.StopReason, len(res.Steps))
	}
	reversed := []rune(tok)
	for i, j := 0, len(reversed)-1; i < j; i, j = i+1, j-1 {
		reversed[i], reversed[j] = reversed[j], reversed[i]
	}
	if res.Run == nil || res.Run.Verdict != cove.VerdictOK || res.Run.Stdout != string(reversed)+"\n" || res.Code != "print(open('data/in.txt').read()[::-1])\n" {
		t.Errorf("run %+v code %q", res.Run, res.Code)
	}
	tools := []string{}
	for i, s := range d.steps {
		tools = append(tools, s.Tool)
		if s.N != i+1 || !json.Valid(s.Input) {
			t.Errorf("step %d: %+v", i, s)
		}
	}
	if strings.Join(tools, ",") != "write_file,run_command,run_code,read_file,run_code" {
		t.Errorf("tools %v", tools)
	}
	if !d.steps[2].IsError || d.steps[2].Run.ExitCode != 3 || d.steps[4].IsError || !strings.Contains(d.steps[3].Output, tok) {
		t.Errorf("steps %+v", d.steps)
	}
	// The text of each turn comes before the steps of that turn.
	order := []string{}
	for _, ty := range d.order {
		if len(order) == 0 || order[len(order)-1] != string(ty) {
			order = append(order, string(ty))
		}
	}
	if strings.Join(order, ",") != "text,step,text,step,result" {
		t.Errorf("event order %v", order)
	}
	if !strings.Contains(res.Text, "The cause: n is 0 on line 2.\n\nExit status 3") {
		t.Errorf("text %q", res.Text)
	}
	if sbs := sandboxes(t, svc); len(sbs) != 0 {
		t.Errorf("the loop's sandbox was not deleted: %+v", sbs[0])
	}
	if len(s.Requests()) != 2 {
		t.Errorf("%d requests", len(s.Requests()))
	}
}

// TestFixVerifyWithTest checks that a fix is verified only when the test
// command passes too, and that the test's real failure is fed back.
func TestFixVerifyWithTest(t *testing.T) {
	s := aitest.New(t, nil)
	s.SetHandler(func(r *aitest.Request) aitest.Reply {
		switch turn(r) {
		case 0:
			if u := r.FirstUserText(); !strings.Contains(u, "test_calc.py (") || !strings.Contains(u, "self.assertEqual(calc.add(2, 3), 5)") || !strings.Contains(u, "then runs the test command `python3 -m unittest -q test_calc`") {
				t.Errorf("the prompt lacks the test:\n%s", u)
			}
			return aitest.Reply{ToolUses: []aitest.ToolUse{{Name: cove.AIToolRunCode, Input: map[string]any{"code": "def add(a, b):\n    return a - b\n"}}}}
		case 1:
			txt := r.ToolResults()[0].ResultText()
			if !strings.Contains(txt, "The program ended with verdict ok") || !strings.Contains(txt, "The test command `python3 -m unittest -q test_calc` ended with verdict exit_nonzero") || !strings.Contains(txt, "AssertionError: -1 != 5") {
				t.Errorf("result %q", txt)
			}
			return aitest.Reply{Text: "add subtracts.", ToolUses: []aitest.ToolUse{{Name: cove.AIToolRunCode, Input: map[string]any{"code": "def add(a, b):\n    return a + b\n"}}}}
		}
		t.Errorf("turn %d: %s", turn(r), r.ToolResults()[0].ResultText())
		return aitest.APIError(500, "api_error", "no more turns")
	})
	svc := newService(t, s)
	st, err := svc.Analyze(t.Context(), cove.AIRequest{
		Action: cove.AIFix, Language: "python", Filename: "calc.py", Code: "def add(a, b):\n    return a - b\n", Verify: true,
		Test:  "python3 -m unittest -q test_calc",
		Files: map[string][]byte{"test_calc.py": []byte("import unittest\nimport calc\n\n\nclass T(unittest.TestCase):\n    def test_add(self):\n        self.assertEqual(calc.add(2, 3), 5)\n")},
	})
	if err != nil {
		t.Fatal(err)
	}
	d := drain(st)
	if d.err != nil {
		t.Fatal(d.err)
	}
	if !d.result.Verified || len(d.result.Steps) != 2 || !d.result.Steps[0].IsError || d.result.TestRun == nil || d.result.TestRun.Verdict != cove.VerdictOK || d.result.Code != "def add(a, b):\n    return a + b\n" {
		t.Fatalf("%+v", d.result)
	}
	// The line that says why the test failed, for a front end to show.
	if got := ai.TestFailure(d.result.Steps[0].Output); got != "AssertionError: -1 != 5" {
		t.Errorf("TestFailure gave %q of\n%s", got, d.result.Steps[0].Output)
	}
	if got := ai.TestFailure(d.result.Steps[1].Output); got != "OK" {
		t.Errorf("TestFailure of the passing step gave %q", got)
	}
}

// TestFixVerifyKeepsTheTests checks that a fix is judged against the
// tests as given: a test file that a tool call (or the program) rewrote
// is put back before the test command runs, so a weakened test cannot
// make a fix that does not work pass as verified.
func TestFixVerifyKeepsTheTests(t *testing.T) {
	const test = "import unittest\nimport calc\n\n\nclass T(unittest.TestCase):\n    def test_add(self):\n        self.assertEqual(calc.add(2, 3), 5)\n"
	broken := "def add(a, b):\n    return a - b\n"
	s := aitest.New(t, nil)
	s.SetHandler(func(r *aitest.Request) aitest.Reply {
		switch turn(r) {
		case 0:
			return aitest.Reply{ToolUses: []aitest.ToolUse{
				{Name: cove.AIToolWriteFile, Input: map[string]any{"path": "test_calc.py", "content": "import unittest\n\n\nclass T(unittest.TestCase):\n    def test_add(self):\n        pass\n"}},
				{Name: cove.AIToolRunCode, Input: map[string]any{"code": broken}},
			}}
		case 1:
			// The program itself rewrites the test as it runs.
			return aitest.Reply{ToolUses: []aitest.ToolUse{{Name: cove.AIToolRunCode, Input: map[string]any{
				"code": broken + "open('test_calc.py', 'w').write('')\n",
			}}}}
		}
		return aitest.Text("I give up.")
	})
	svc := newService(t, s)
	st, err := svc.Analyze(t.Context(), cove.AIRequest{
		Action: cove.AIFix, Language: "python", Filename: "calc.py", Code: broken, Verify: true,
		Test: "python3 -m unittest -q test_calc", Files: map[string][]byte{"test_calc.py": []byte(test)},
	})
	if err != nil {
		t.Fatal(err)
	}
	d := drain(st)
	if d.err != nil {
		t.Fatal(d.err)
	}
	if d.result.Verified || d.result.StopReason != cove.AIStopEndTurn || len(d.result.Steps) != 3 || d.result.TestRun == nil || d.result.TestRun.Verdict == cove.VerdictOK {
		t.Fatalf("a fix that fails the given test was verified: %+v", d.result)
	}
	for _, i := range []int{1, 2} {
		out := d.result.Steps[i].Output
		if !d.result.Steps[i].IsError || !strings.Contains(out, "cove put back test_calc.py as given") || !strings.Contains(out, "AssertionError: -1 != 5") {
			t.Errorf("step %d: %s", i+1, out)
		}
	}
}

// TestFixVerifyBounds checks that the loop stops at each of its bounds
// with the reason, and without a verified fix.
func TestFixVerifyBounds(t *testing.T) {
	failing := func(*aitest.Request) aitest.Reply {
		return aitest.Reply{Text: "Trying again.", ToolUses: []aitest.ToolUse{{Name: cove.AIToolRunCode, Input: map[string]any{"code": "import sys\nsys.exit(1)\n"}}}}
	}
	cases := []struct {
		name     string
		handler  aitest.Handler
		req      cove.AIRequest
		stop     string
		steps    int
		requests int
		within   time.Duration
	}{
		{"steps", failing, cove.AIRequest{MaxSteps: 3}, cove.AIStopMaxSteps, 3, 3, time.Minute},
		{"time", func(*aitest.Request) aitest.Reply {
			return aitest.Reply{ToolUses: []aitest.ToolUse{{Name: cove.AIToolRunCode, Input: map[string]any{"code": "import time\ntime.sleep(20)\n"}}}}
		}, cove.AIRequest{Timeout: 1500 * time.Millisecond}, cove.AIStopTimeout, 1, 1, 10 * time.Second},
		{"tokens", func(*aitest.Request) aitest.Reply {
			r := failing(nil)
			r.InputTokens, r.OutputTokens = 900, 200
			return r
		}, cove.AIRequest{MaxTokens: 1000}, cove.AIStopMaxTokens, 1, 1, time.Minute},
		{"end of turn", func(*aitest.Request) aitest.Reply { return aitest.Text("I cannot fix this.") }, cove.AIRequest{}, cove.AIStopEndTurn, 0, 1, time.Minute},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := aitest.New(t, tc.handler)
			svc := newService(t, s)
			req := tc.req
			req.Action, req.Language, req.Code, req.Verify = cove.AIFix, "python", "import sys\nsys.exit(1)\n", true
			start := time.Now()
			st, err := svc.Analyze(t.Context(), req)
			if err != nil {
				t.Fatal(err)
			}
			d := drain(st)
			if d.err != nil {
				t.Fatal(d.err)
			}
			if d.result.Verified || d.result.StopReason != tc.stop || len(d.result.Steps) != tc.steps || len(s.Requests()) != tc.requests {
				t.Errorf("verified %v stop %q steps %d requests %d", d.result.Verified, d.result.StopReason, len(d.result.Steps), len(s.Requests()))
			}
			if took := time.Since(start); took > tc.within {
				t.Errorf("took %s", took)
			}
			if tc.name == "tokens" && s.Requests()[0].MaxTokens != 1000 {
				t.Errorf("max_tokens %d", s.Requests()[0].MaxTokens)
			}
			if sbs := sandboxes(t, svc); len(sbs) != 0 {
				t.Errorf("the loop's sandbox was not deleted")
			}
		})
	}
}

// TestFixVerifyTurnCutAtMaxTokens checks that a turn cut at its token
// limit in the middle of a tool call ends the loop with max_tokens: the
// cut call is not run, and nothing that does not parse goes back to the
// API.
func TestFixVerifyTurnCutAtMaxTokens(t *testing.T) {
	s := aitest.New(t, aitest.Script(aitest.Reply{
		Text:       "The cause: n is 0.",
		ToolUses:   []aitest.ToolUse{{Name: cove.AIToolRunCode, RawInput: `{"code": "n = 1\nprint(10 / `}},
		StopReason: "max_tokens",
	}))
	svc := newService(t, s)
	d := fixFailingRun(t, svc)
	if d.result.Verified || d.result.StopReason != cove.AIStopMaxTokens || len(d.result.Steps) != 0 || d.result.Code != "" || d.result.Text != "The cause: n is 0." {
		t.Errorf("%+v", d.result)
	}
	if n := len(s.Requests()); n != 1 {
		t.Errorf("%d requests", n)
	}
	if sbs := sandboxes(t, svc); len(sbs) != 0 {
		t.Errorf("the loop's sandbox was not deleted")
	}
}

// TestFixVerifyReadsBinaryFiles: read_file gives a file that is not text
// as the program's output is given, each byte that is not printable UTF-8
// written as \xNN and said so, not as replacement characters.
func TestFixVerifyReadsBinaryFiles(t *testing.T) {
	var got string
	s := aitest.New(t, nil)
	s.SetHandler(func(r *aitest.Request) aitest.Reply {
		switch turn(r) {
		case 0:
			return aitest.Reply{ToolUses: []aitest.ToolUse{
				{Name: cove.AIToolRunCommand, Input: map[string]any{"command": `printf 'a\000b\033[31mred\377\n' > bin.dat`}},
				{Name: cove.AIToolReadFile, Input: map[string]any{"path": "bin.dat"}},
			}}
		case 1:
			if res := r.ToolResults(); len(res) == 2 {
				got = res[1].ResultText()
			}
		}
		return aitest.Reply{Text: "Done."}
	})
	svc := newService(t, s)
	fixFailingRun(t, svc)
	for _, want := range []string{`a\x00b\x1b[31mred\xff`, `shown as \xNN`} {
		if !strings.Contains(got, want) {
			t.Errorf("read_file gave %q, which lacks %q", got, want)
		}
	}
}

// TestFixVerifyCachesItsPrompt: every turn of the loop asks the API to
// cache the conversation, which the next turn sends again, and input read
// from or written to the cache counts as input, in the result and against
// the loop's token bound.
func TestFixVerifyCachesItsPrompt(t *testing.T) {
	s := aitest.New(t, aitest.Script(
		aitest.Reply{ToolUses: []aitest.ToolUse{{Name: cove.AIToolRunCommand, Input: map[string]any{"command": "echo one"}}}},
		aitest.Reply{ToolUses: []aitest.ToolUse{{Name: cove.AIToolRunCommand, Input: map[string]any{"command": "echo two"}}}},
		aitest.Text("Nothing to fix."),
	))
	svc := newService(t, s)
	d := fixFailingRun(t, svc)
	reqs := s.Requests()
	var input int64
	for i, r := range reqs {
		if r.CacheControl == nil || r.CacheControl.Type != "ephemeral" {
			t.Errorf("request %d asks for no caching", i)
		}
		input += int64(len(r.Body)/4 + 1) // the fake's count, cached or not
	}
	if len(reqs) != 3 || d.result.InputTokens != input {
		t.Errorf("%d requests, %d input tokens in the result, want %d", len(reqs), d.result.InputTokens, input)
	}
}

// TestFixVerifyInGivenSandbox checks that the loop works in the caller's
// sandbox, with its files, and leaves it in place.
func TestFixVerifyInGivenSandbox(t *testing.T) {
	tok := token()
	s := aitest.New(t, aitest.Script(aitest.Reply{ToolUses: []aitest.ToolUse{
		{Name: cove.AIToolRunCode, Input: map[string]any{"code": "print(open('input.txt').read())\nopen('out.txt', 'w').write('done')\n"}},
	}}))
	svc := newService(t, s)
	ctx := t.Context()
	sb, err := svc.CreateSandbox(ctx, cove.SandboxSpec{Language: "python"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.WriteFile(ctx, sb.ID, "input.txt", strings.NewReader(tok), 0); err != nil {
		t.Fatal(err)
	}
	st, err := svc.Analyze(ctx, cove.AIRequest{Action: cove.AIFix, Language: "python", Code: "print(open('inptu.txt').read())\n", Verify: true, SandboxID: sb.ID})
	if err != nil {
		t.Fatal(err)
	}
	d := drain(st)
	if d.err != nil || !d.result.Verified || strings.TrimSpace(d.result.Run.Stdout) != tok {
		t.Fatalf("%v %+v", d.err, d.result)
	}
	rc, _, err := svc.ReadFile(ctx, sb.ID, "out.txt")
	if err != nil {
		t.Fatalf("the sandbox is gone or the file is not there: %v", err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "done" {
		t.Errorf("out.txt %q", b)
	}
	if _, err := svc.Analyze(ctx, cove.AIRequest{Action: cove.AIFix, Language: "python", Code: "x", Verify: true, SandboxID: "nope"}); cove.ErrorCode(err) != cove.CodeNotFound {
		t.Errorf("unknown sandbox: %v", err)
	}
}

// TestServiceValidates checks what the service refuses before asking
// anyone.
func TestServiceValidates(t *testing.T) {
	s := aitest.New(t, aitest.Script())
	svc := service.New(nil, service.Options{Analyzer: newAnalyzer(s)})
	cases := map[string]cove.AIRequest{
		"unknown action":      {Action: "summarize", Language: "python", Code: "x"},
		"no code":             {Action: cove.AIExplain, Language: "python"},
		"unknown language":    {Action: cove.AIExplain, Language: "cobol", Code: "x"},
		"verify for explain":  {Action: cove.AIExplain, Language: "python", Code: "x", Verify: true},
		"test without verify": {Action: cove.AIFix, Language: "python", Code: "x", Test: "true"},
		"too many steps":      {Action: cove.AIFix, Language: "python", Code: "x", Verify: true, MaxSteps: 1000},
		"bad file name":       {Action: cove.AIFix, Language: "python", Code: "x", Filename: "../x.py"},
		"wrong extension":     {Action: cove.AIFix, Language: "python", Code: "x", Filename: "x.js"},
		"too large":           {Action: cove.AIExplain, Language: "python", Code: strings.Repeat("x", cove.MaxAICodeBytes+1)},
	}
	for name, req := range cases {
		if _, err := svc.Analyze(t.Context(), req); cove.ErrorCode(err) != cove.CodeInvalid {
			t.Errorf("%s: %v", name, err)
		}
	}
	if len(s.Requests()) != 0 {
		t.Errorf("%d requests", len(s.Requests()))
	}
	off := service.New(nil, service.Options{})
	if _, err := off.Analyze(t.Context(), cove.AIRequest{Action: cove.AIExplain, Language: "python", Code: "x"}); cove.ErrorCode(err) != cove.CodeUnavailable {
		t.Errorf("without an analyzer: %v", err)
	}
}

// TestFixVerifyFirstRequestFails: when the API refuses the loop's first
// request (a wrong key, an overloaded API, a rate limit), Analyze fails
// with that error, as an answer without verify does, rather than handing
// back no stream and no error; and the sandbox it made is deleted.
func TestFixVerifyFirstRequestFails(t *testing.T) {
	fast := time.Millisecond
	cases := []struct {
		name  string
		reply aitest.Reply
		code  cove.Code
		says  string
	}{
		{"unauthorized", aitest.APIError(401, "authentication_error", "invalid x-api-key"), cove.CodeUnavailable, "the Anthropic API refused the API key (401 authentication_error: invalid x-api-key)"},
		{"overloaded", aitest.Reply{Error: &aitest.Error{Status: 529, Type: "overloaded_error", Message: "Overloaded", RetryAfter: fast}}, cove.CodeUnavailable, "the Anthropic API is overloaded"},
		{"rate limited", aitest.Reply{Error: &aitest.Error{Status: 429, Type: "rate_limit_error", Message: "slow down", RetryAfter: fast}}, cove.CodeQuotaExceeded, "rate limiting this API key"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := aitest.New(t, func(*aitest.Request) aitest.Reply { return tc.reply })
			svc := newService(t, s)
			st, err := svc.Analyze(t.Context(), cove.AIRequest{Action: cove.AIFix, Language: "python", Code: divCode, Execution: failingRun(), Verify: true})
			if st != nil || cove.ErrorCode(err) != tc.code || !strings.Contains(cove.ErrorMessage(err), tc.says) {
				t.Fatalf("stream %v, error %v; want no stream and %s %q", st, err, tc.code, tc.says)
			}
			if sbs := sandboxes(t, svc); len(sbs) != 0 {
				t.Errorf("the loop's sandbox was not deleted: %+v", sbs[0])
			}
		})
	}
	t.Run("time bound", func(t *testing.T) {
		s := aitest.New(t, func(r *aitest.Request) aitest.Reply {
			<-r.Done
			return aitest.Text("too late")
		})
		svc := newService(t, s, func(o *ai.Options) { o.MaxRetries = -1 })
		st, err := svc.Analyze(t.Context(), cove.AIRequest{Action: cove.AIFix, Language: "python", Code: divCode, Verify: true, Timeout: 500 * time.Millisecond})
		if st != nil || cove.ErrorCode(err) != cove.CodeTimeout || !strings.Contains(cove.ErrorMessage(err), "time bound of 500ms passed before the Anthropic API answered") {
			t.Fatalf("stream %v, error %v", st, err)
		}
	})
}
