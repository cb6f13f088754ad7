package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
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

// aiCLI is an in-process CLI whose analysis talks to the fake API.
func aiCLI(t *testing.T, s *aitest.Server) *cli {
	return newCLI(t).with("ANTHROPIC_BASE_URL", s.URL, "ANTHROPIC_API_KEY", "sk-ant-cli-test")
}

func randomToken() string { return "tok" + strings.ToLower(rand.Text()[:10]) }

// TestAIExplainStreams checks that `cove ai explain` runs the program,
// sends its real output, and prints the answer's text as it streams: the
// first chunks are on stdout while the answer is still being written.
func TestAIExplainStreams(t *testing.T) {
	hold := make(chan struct{})
	chunks := []string{"It prints ", "a token ", "and exits ", "with 3."}
	s := aitest.New(t, aitest.Script(aitest.Reply{Chunks: chunks, Hold: hold}))
	c := aiCLI(t, s)
	tok := randomToken()
	prog := writeFile(t, "prog.py", "import sys\nprint('"+tok+"')\nsys.exit(3)\n")

	pr, pw := io.Pipe()
	var stderr strings.Builder
	done := make(chan int, 1)
	go func() {
		done <- c.stream(strings.NewReader(""), pw, &stderr, "ai", "explain", prog)
		pw.Close()
	}()
	br := bufio.NewReader(pr)
	want := strings.Join(chunks[:len(chunks)-1], "")
	got := make([]byte, len(want))
	if _, err := io.ReadFull(br, got); err != nil || string(got) != want {
		t.Fatalf("before the end of the answer: %q %v", got, err)
	}
	close(hold)
	rest, _ := io.ReadAll(br)
	if code := <-done; code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if string(rest) != chunks[len(chunks)-1]+"\n" {
		t.Errorf("rest %q", rest)
	}
	if !strings.Contains(stderr.String(), "cove: ran prog.py: exit_nonzero, exit code 3") || !strings.Contains(stderr.String(), "cove: claude-sonnet-5-5, ") {
		t.Errorf("stderr %q", stderr.String())
	}
	user := s.Requests()[0].FirstUserText()
	if !strings.Contains(user, tok) || !strings.Contains(user, "exit code: 3") || !strings.Contains(user, "(prog.py)") {
		t.Errorf("prompt:\n%s", user)
	}
}

// TestAIReviewAndOptimize checks the printed findings, --json, --no-run
// and -o.
func TestAIReviewAndOptimize(t *testing.T) {
	findings := map[string]any{"findings": []map[string]any{
		{"severity": "high", "category": "bug", "line": 2, "message": "Divides by zero."},
		{"severity": "info", "category": "style", "line": 0, "message": "Add a docstring."},
	}}
	s := aitest.New(t, aitest.Script(
		aitest.Reply{Text: "A bug.", ToolUses: []aitest.ToolUse{{Name: "report_findings", Input: findings}}},
		aitest.Reply{Text: "A bug.", ToolUses: []aitest.ToolUse{{Name: "report_findings", Input: findings}}},
		aitest.Text("Sum with the formula.\n\n```python\nprint(4950)\n```\n"),
	))
	c := aiCLI(t, s)
	prog := writeFile(t, "sum.py", "n = 0\nprint(1 / n)\n")
	out := c.ok("ai", "review", prog)
	if out != "A bug.\n\nFindings (2):\n  1. [high] bug, line 2: Divides by zero.\n  2. [info] style, whole program: Add a docstring.\n" {
		t.Errorf("review:\n%s", out)
	}
	out = c.ok("ai", "review", "--json", "--no-run", prog)
	var res wire.AIResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Findings) != 2 || res.Action != "review" {
		t.Errorf("--json: %v\n%s", err, out)
	}
	if !strings.Contains(s.Requests()[1].FirstUserText(), "The program has not been run.") {
		t.Error("--no-run sent a run")
	}
	dst := filepath.Join(t.TempDir(), "fast.py")
	out = c.ok("ai", "optimize", "-o", dst, prog)
	if b, err := os.ReadFile(dst); err != nil || string(b) != "print(4950)\n" || !strings.HasPrefix(out, "Sum with the formula.") {
		t.Errorf("-o: %q %v; stdout %q", b, err, out)
	}
}

// TestAIFixVerify runs `cove ai fix --verify`: each step is printed as it
// runs, the real output goes back to the model, and the verdict ends it.
func TestAIFixVerify(t *testing.T) {
	tok := randomToken()
	s := aitest.New(t, nil)
	s.SetHandler(func(r *aitest.Request) aitest.Reply {
		if len(r.Messages) == 1 {
			if !strings.Contains(r.FirstUserText(), "test_div.py (") {
				t.Errorf("the prompt lacks the test file")
			}
			return aitest.Reply{Text: "n is 0.", ToolUses: []aitest.ToolUse{{Name: cove.AIToolRunCode, Input: map[string]any{"code": "print('" + tok + "')\nprint(1 / 0)\n"}}}}
		}
		if got := r.ToolResults()[0].ResultText(); !strings.Contains(got, tok) || !strings.Contains(got, "ZeroDivisionError") {
			t.Errorf("tool result %q", got)
		}
		return aitest.Reply{Text: "Use 1.", ToolUses: []aitest.ToolUse{{Name: cove.AIToolRunCode, Input: map[string]any{"code": "print('" + tok + "')\nprint(1 / 1)\n"}}}}
	})
	c := aiCLI(t, s)
	prog := writeFile(t, "div.py", "n = 0\nprint(1 / n)\n")
	test := writeFile(t, "test_div.py", "import unittest\n\n\nclass T(unittest.TestCase):\n    def test_runs(self):\n        import div\n")
	dst := filepath.Join(t.TempDir(), "fixed.py")
	r := c.do("", "ai", "fix", "--verify", "-f", test, "--test", "python3 -m unittest -q test_div", "-o", dst, prog)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	for _, want := range []string{
		"n is 0.\n\n[step 1] run_code: 2 lines -> exit_nonzero, exit code 1, ",
		"ZeroDivisionError: division by zero\n\nUse 1.\n\n[step 2] run_code: 2 lines -> ok, exit code 0, ",
		"The final code:\n\n```python\nprint('" + tok + "')\nprint(1 / 1)\n```\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
		}
	}
	if !strings.Contains(r.stderr, "cove: verified: the fixed code ran with verdict ok and the test passed (2 steps)") {
		t.Errorf("stderr %q", r.stderr)
	}
	if b, _ := os.ReadFile(dst); string(b) != "print('"+tok+"')\nprint(1 / 1)\n" {
		t.Errorf("fixed.py %q", b)
	}

	s.SetHandler(func(*aitest.Request) aitest.Reply {
		return aitest.Reply{ToolUses: []aitest.ToolUse{{Name: cove.AIToolRunCode, Input: map[string]any{"code": "print(1 / 0)\n"}}}}
	})
	r = c.do("", "ai", "fix", "--verify", "--max-steps", "2", "--no-run", prog)
	if r.code != 1 || !strings.HasSuffix(r.stderr, "cove: not verified: the loop reached its step limit after 2 steps\n") {
		t.Errorf("exit %d stderr %q", r.code, r.stderr)
	}
}

// TestAIErrors checks that each failure is one clear line with cove's
// exit status, and that bad flags fail before anything runs.
func TestAIErrors(t *testing.T) {
	fast := time.Millisecond
	s := aitest.New(t, aitest.Script(
		aitest.APIError(401, "authentication_error", "invalid x-api-key"),
		aitest.Reply{Error: &aitest.Error{Status: 429, Type: "rate_limit_error", Message: "rate limited", RetryAfter: fast}},
		aitest.Reply{Error: &aitest.Error{Status: 429, Type: "rate_limit_error", Message: "rate limited", RetryAfter: fast}},
		aitest.Reply{Error: &aitest.Error{Status: 429, Type: "rate_limit_error", Message: "rate limited", RetryAfter: fast}},
		aitest.Reply{Error: &aitest.Error{Status: 429, Type: "rate_limit_error", Message: "rate limited", RetryAfter: fast}},
		aitest.Reply{Error: &aitest.Error{Status: 529, Type: "overloaded_error", Message: "Overloaded", RetryAfter: fast}},
		aitest.Reply{Error: &aitest.Error{Status: 529, Type: "overloaded_error", Message: "Overloaded", RetryAfter: fast}},
		aitest.Reply{Error: &aitest.Error{Status: 529, Type: "overloaded_error", Message: "Overloaded", RetryAfter: fast}},
		aitest.Reply{Error: &aitest.Error{Status: 529, Type: "overloaded_error", Message: "Overloaded", RetryAfter: fast}},
	))
	c := aiCLI(t, s)
	prog := writeFile(t, "p.py", "print(1)\n")
	c.fails(cove.CodeUnavailable, `^cove: the Anthropic API refused the API key \(401 authentication_error: invalid x-api-key\): check ANTHROPIC_API_KEY`, "ai", "explain", "--no-run", prog)
	// Each retry is a line of its own before the error.
	for _, tc := range []struct {
		code       cove.Code
		retry, end string
	}{
		{cove.CodeQuotaExceeded, "the Anthropic API is rate limiting this API key (429)", "the Anthropic API is rate limiting this API key (429 rate_limit_error: rate limited) (tried 4 times): try again in a minute"},
		{cove.CodeUnavailable, "the Anthropic API is overloaded (529)", "the Anthropic API is overloaded (529 overloaded_error: Overloaded) (tried 4 times): try again in a few minutes"},
	} {
		r := c.do("", "ai", "explain", "--no-run", prog)
		var want strings.Builder
		for i := 1; i <= 3; i++ {
			fmt.Fprintf(&want, "cove: %s; retrying (%d of 3)\n", tc.retry, i)
		}
		want.WriteString("cove: " + tc.end + "\n")
		if r.code != cove.Codes[tc.code].ExitCode || r.stderr != want.String() {
			t.Errorf("exit %d stderr %q, want %q", r.code, r.stderr, want.String())
		}
	}
	if n := len(s.Requests()); n != 9 {
		t.Errorf("%d requests, want 1 + 4 + 4", n)
	}
	c.with("ANTHROPIC_API_KEY", "").fails(cove.CodeUnavailable, `^cove: code analysis needs an Anthropic API key: set ANTHROPIC_API_KEY`, "ai", "review", prog)
	c.fails(cove.CodeInvalid, `^cove: --test, --max-steps and --max-time need --verify`, "ai", "fix", "--test", "true", prog)
	c.fails(cove.CodeInvalid, `^cove: unknown action "summarize": use explain, review, optimize or fix`, "ai", "summarize", prog)
	c.fails(cove.CodeInvalid, `^cove: give one program file`, "ai", "explain")
	c.with("ANTHROPIC_BASE_URL", "ftp://x").fails(cove.CodeInvalid, `^cove: invalid configuration: ANTHROPIC_BASE_URL "ftp://x"`, "ai", "explain", prog)
	if n := len(s.Requests()); n != 9 {
		t.Errorf("bad input reached the API: %d requests", n)
	}
}

// TestAIRemote runs `cove ai fix --verify` against a server (COVE_URL):
// the server runs the program, asks the model with its own key, and runs
// the loop's tools in its sandboxes.
func TestAIRemote(t *testing.T) {
	tok := randomToken()
	s := aitest.New(t, nil)
	s.SetHandler(func(r *aitest.Request) aitest.Reply {
		if len(r.Messages) == 1 {
			if !strings.Contains(r.FirstUserText(), "ReferenceError: consol is not defined") {
				t.Errorf("the server did not send the run:\n%s", r.FirstUserText())
			}
			return aitest.Reply{Text: "A typo.", ToolUses: []aitest.ToolUse{{Name: cove.AIToolRunCode, Input: map[string]any{"code": "console.log('" + tok + "')\n"}}}}
		}
		return aitest.Text("unexpected")
	})
	srv := aiServer(t, ai.New(ai.Options{APIKey: "sk-server", BaseURL: s.URL}))
	// The CLI's environment has no Anthropic key: the server's is used.
	c := srv.cli(t, srv.admin)
	prog := writeFile(t, "typo.js", "consol.log('hi')\n")
	r := c.do("", "ai", "fix", "--verify", prog)
	if r.code != 0 || !strings.Contains(r.stdout, "[step 1] run_code: 1 lines -> ok, exit code 0") || !strings.Contains(r.stderr, "cove: ran typo.js: exit_nonzero") ||
		!strings.Contains(r.stderr, "cove: verified: the fixed code ran with verdict ok (1 step)\n") {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", r.code, r.stdout, r.stderr)
	}
	if got := s.Requests()[0].Header.Get("X-Api-Key"); got != "sk-server" {
		t.Errorf("key %q", got)
	}
}

// aiServer starts a cove server whose analysis is analyzer's.
func aiServer(t *testing.T, analyzer *ai.Analyzer) *testServer {
	t.Helper()
	be, _ := nativetest.New(t)
	svc := service.New(be, service.Options{Analyzer: analyzer})
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	admin := "cove_test_admin_" + rand.Text()
	if err := svc.EnsureAdminKey(context.Background(), admin); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(httpapi.New(svc, httpapi.Options{Auth: svc}))
	t.Cleanup(func() {
		hs.Close()
		svc.Close(context.Background())
	})
	return &testServer{url: hs.URL, admin: admin, svc: svc}
}

// TestAIRemoteWithoutKey: against a server without an Anthropic key,
// `cove ai explain` says so at once, without running the program first.
func TestAIRemoteWithoutKey(t *testing.T) {
	srv := aiServer(t, ai.New(ai.Options{}))
	c := srv.cli(t, srv.admin)
	prog := writeFile(t, "sleep.py", "import time\ntime.sleep(20)\n")
	start := time.Now()
	c.fails(cove.CodeUnavailable, `^cove: the cove server at http://127\.0\.0\.1:\d+ cannot analyze code: set ANTHROPIC_API_KEY where `+"`cove serve`"+` runs, then restart it\n$`, "ai", "explain", prog)
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("took %s: the program ran first", took)
	}
}

// TestStepLine checks the one-line account of a fix step, in particular
// that a program that ran but whose test failed does not read as a pass.
func TestStepLine(t *testing.T) {
	in, _ := json.Marshal(map[string]string{"code": "def f():\n    return 1\n"})
	ok := &cove.ExecResult{Verdict: cove.VerdictOK, WallMS: 11}
	for _, c := range []struct {
		step cove.AIStep
		want []string
		not  []string
	}{
		{cove.AIStep{N: 1, Tool: cove.AIToolRunCode, Input: in, Run: ok, Output: "ok"},
			[]string{"[step 1] run_code: 2 lines -> ok"}, []string{"test failed"}},
		{cove.AIStep{N: 2, Tool: cove.AIToolRunCode, Input: in, Run: ok, IsError: true,
			Output: "The program ended with verdict ok, exit code 0, after 11 ms.\nstdout: (empty)\nstderr: (empty)\n\n" +
				"The test command `python3 -m unittest -q test_app` ended with verdict exit_nonzero, exit code 1, after 80 ms.\nstdout: (empty)\nstderr:\n```\n" +
				"======================================================================\nFAIL: test_add (test_app.T.test_add)\n----------------------------------------------------------------------\n" +
				"Traceback (most recent call last):\n  File \"/workspace/test_app.py\", line 7, in test_add\n    self.assertEqual(app.add(2, 3), 5)\nAssertionError: 6 != 5\n\n" +
				"----------------------------------------------------------------------\nRan 1 test in 0.000s\n\nFAILED (failures=1)\n```"},
			[]string{"[step 2] run_code: 2 lines -> ok", "; the test failed\n         AssertionError: 6 != 5"}, []string{"```"}},
	} {
		got := stepLine(&c.step)
		for _, w := range c.want {
			if !strings.Contains(got, w) {
				t.Errorf("step %d: %q lacks %q", c.step.N, got, w)
			}
		}
		for _, w := range c.not {
			if strings.Contains(got, w) {
				t.Errorf("step %d: %q has %q", c.step.N, got, w)
			}
		}
	}
}

// TestAIAnswersWithoutText: an answer Claude declined, or one with no text,
// says so in a line of its own instead of printing nothing.
func TestAIAnswersWithoutText(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reply aitest.Reply
		want  string
	}{
		{"refusal", aitest.Reply{StopReason: "refusal"}, "cove: Claude declined to answer\n"},
		{"empty", aitest.Reply{}, "cove: the answer was empty\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := aitest.New(t, aitest.Script(tc.reply))
			prog := writeFile(t, "prog.py", "print(1)\n")
			r := aiCLI(t, s).do("", "ai", "explain", "--no-run", prog)
			if r.code != 0 || r.stdout != "" && r.stdout != "\n" || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("exit %d stdout %q stderr %q, want %q on stderr", r.code, r.stdout, r.stderr, tc.want)
			}
		})
	}
}

// TestAIFixVerifyAPIRefuses: `cove ai fix --verify` whose first request
// the API refuses fails with the API's error in one line, as without
// --verify (it crashed on a nil stream).
func TestAIFixVerifyAPIRefuses(t *testing.T) {
	s := aitest.New(t, aitest.Script(aitest.APIError(401, "authentication_error", "invalid x-api-key")))
	c := aiCLI(t, s)
	prog := writeFile(t, "add.py", "def add(a, b):\n    return a - b\n")
	c.fails(cove.CodeUnavailable, `^cove: the Anthropic API refused the API key \(401 authentication_error: invalid x-api-key\): check ANTHROPIC_API_KEY\n$`, "ai", "fix", "--verify", "--no-run", prog)

	// Through a server's REST API too (it answered 200 with no events).
	s.SetHandler(aitest.Script(aitest.APIError(401, "authentication_error", "invalid x-api-key")))
	srv := aiServer(t, ai.New(ai.Options{APIKey: "sk-server", BaseURL: s.URL}))
	srv.cli(t, srv.admin).fails(cove.CodeUnavailable, `^cove: the Anthropic API refused the API key \(401 authentication_error: invalid x-api-key\): check ANTHROPIC_API_KEY\n$`, "ai", "fix", "--verify", "--no-run", prog)
}

// TestAIFixVerifyUnverifiedKeepsTheFile runs the README's example with a
// loop that never passes: -o leaves the program as it was and says so,
// the failing test's reason shows under each step, and the code shown
// last is labelled as the attempt that did not pass.
func TestAIFixVerifyUnverifiedKeepsTheFile(t *testing.T) {
	s := aitest.New(t, func(r *aitest.Request) aitest.Reply {
		return aitest.Reply{Text: "Try multiplying.", ToolUses: []aitest.ToolUse{{Name: cove.AIToolRunCode, Input: map[string]any{"code": "def add(a, b):\n    return a * b\n"}}}}
	})
	c := aiCLI(t, s)
	const original = "def add(a, b):\n    return a - b\n"
	dir := t.TempDir()
	app := filepath.Join(dir, "app.py")
	if err := os.WriteFile(app, []byte(original), 0o644); err != nil {
		t.Fatal(err)
	}
	test := filepath.Join(dir, "test_app.py")
	if err := os.WriteFile(test, []byte("import unittest\nimport app\n\n\nclass T(unittest.TestCase):\n    def test_add(self):\n        self.assertEqual(app.add(2, 3), 5)\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := c.do("", "ai", "fix", "--verify", "--max-steps", "2", "-f", test, "--test", "python3 -m unittest -q test_app", "-o", app, app)
	if r.code != 1 || !strings.HasSuffix(r.stderr, "cove: not verified: the loop reached its step limit after 2 steps; "+app+" left as it was\n") || strings.Contains(r.stderr, "wrote") {
		t.Errorf("exit %d stderr %q", r.code, r.stderr)
	}
	if b, _ := os.ReadFile(app); string(b) != original {
		t.Errorf("app.py was overwritten with %q", b)
	}
	for _, want := range []string{
		"[step 1] run_code: 2 lines -> ok, exit code 0, ",
		"; the test failed\n         AssertionError: 6 != 5\n\nTry multiplying.",
		"The last attempt, which did not pass:\n\n```python\ndef add(a, b):\n    return a * b\n```\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
		}
	}
	if strings.Contains(r.stdout, "The final code") {
		t.Errorf("the failed attempt reads as the final code:\n%s", r.stdout)
	}
}

// TestAIProgress checks what the terminal shows around the answer: the
// run's summary before the API is asked (also when the API then
// refuses), a retry as a short line of cove's rather than a log line,
// and an error on a line of its own after a cut answer.
func TestAIProgress(t *testing.T) {
	fast := time.Millisecond
	overloaded := &aitest.Error{Type: "overloaded_error", Message: "Overloaded"}
	s := aitest.New(t, aitest.Script(
		aitest.APIError(401, "authentication_error", "invalid x-api-key"),
		aitest.Reply{Error: &aitest.Error{Status: 429, Type: "rate_limit_error", Message: "slow down", RetryAfter: fast}},
		aitest.Text("It prints 1."),
		aitest.Reply{StreamError: overloaded},
		aitest.Text("It prints 1."),
		aitest.Reply{Chunks: []string{"This program defines `add`"}, StreamError: overloaded},
		aitest.Reply{Chunks: []string{"Faster:\n\n```python\ndef add(a, b):\n    return a +"}, StopReason: "max_tokens"},
	))
	c := aiCLI(t, s)
	prog := writeFile(t, "p.py", "print(1)\n")

	r := c.do("", "ai", "explain", prog)
	if r.code == 0 || !regexp.MustCompile(`^cove: ran p\.py: ok, exit code 0, \d+ ms\ncove: the Anthropic API refused the API key`).MatchString(r.stderr) {
		t.Errorf("refused: exit %d stderr %q", r.code, r.stderr)
	}
	for _, want := range []string{
		"cove: the Anthropic API is rate limiting this API key (429); retrying (1 of 3)\n",
		"cove: the Anthropic API is overloaded before its answer began; retrying (1 of 3)\n",
	} {
		r = c.do("", "ai", "explain", "--no-run", prog)
		if r.code != 0 || r.stdout != "It prints 1.\n" || !strings.HasPrefix(r.stderr, want) || strings.Contains(r.stderr, "level=") {
			t.Errorf("retried: exit %d stdout %q stderr %q, want %q", r.code, r.stdout, r.stderr, want)
		}
	}
	r = c.do("", "ai", "explain", "--no-run", prog)
	if r.code == 0 || r.stdout != "This program defines `add`\n" || !strings.HasPrefix(r.stderr, "cove: the Anthropic API is overloaded") {
		t.Errorf("failed after text: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	dst := filepath.Join(t.TempDir(), "fast.py")
	r = c.do("", "ai", "optimize", "--no-run", "-o", dst, prog)
	if r.code == 0 || !strings.HasSuffix(r.stdout, "return a +\n") || r.stderr != "cove: the answer was cut at its token limit before its code was whole: nothing written to "+dst+"\n" {
		t.Errorf("cut with -o: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(dst); err == nil {
		t.Errorf("%s was written", dst)
	}
}
