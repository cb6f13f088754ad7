package service

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/cove-sandbox/cove"
)

func run(t *testing.T, svc *Service, req cove.RunRequest) *cove.ExecResult {
	t.Helper()
	return runIn(t, context.Background(), svc, req)
}

// runIn is run with ctx, which may carry a key.
func runIn(t *testing.T, ctx context.Context, svc *Service, req cove.RunRequest) *cove.ExecResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	st, err := svc.Run(ctx, req)
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	res, err := cove.Collect(st)
	if err != nil {
		t.Fatalf("collect: %v", err)
	}
	return res
}

func TestRunLanguages(t *testing.T) {
	svc, _ := newTestService(t)
	cases := []struct {
		name, lang, code, stdin string
		argv                    []string
		want                    string
		exit                    int
	}{
		{name: "python", lang: "python", code: "print(6*7)", want: "42\n"},
		{name: "python_argv_stdin", lang: "py", code: "import sys\nprint(sys.argv[1:], sys.stdin.read())", argv: []string{"a", "b c"}, stdin: "in", want: "['a', 'b c'] in\n"},
		{name: "python_exit", lang: "python", code: "import sys; sys.exit(3)", exit: 3},
		{name: "javascript", lang: "js", code: "console.log(1+1)", want: "2\n"},
		// Output written before process.exit() is whole, though a pipe
		// holds much less (Node drops what waits to be written).
		// The sandbox has no netlink: Node lists loopback, its one
		// interface, rather than throw.
		{name: "javascript_interfaces", lang: "js", code: `console.log(Object.keys(require("os").networkInterfaces()).join())`, want: "lo\n"},
		{name: "javascript_exit", lang: "js", code: `process.stdout.write("x".repeat(900000) + "\n"); process.exit(4)`, want: strings.Repeat("x", 900000) + "\n", exit: 4},
		{name: "typescript", lang: "ts", code: "const n: number = 21; console.log(n * 2)", want: "42\n"},
		{name: "typescript_await", lang: "typescript", code: "const x = await Promise.resolve('tla'); console.log(x)", want: "tla\n"},
		{name: "bash", lang: "bash", code: "echo $((2+2)); ls /workspace", want: "4\nmain.sh\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			req := cove.RunRequest{CodeRequest: cove.CodeRequest{Language: c.lang, Code: c.code, Argv: c.argv}}
			if c.stdin != "" {
				req.Stdin = []byte(c.stdin)
			}
			res := run(t, svc, req)
			if res.Stdout != c.want || res.ExitCode != c.exit {
				t.Fatalf("got stdout %q exit %d (stderr %q), want %q exit %d", res.Stdout, res.ExitCode, res.Stderr, c.want, c.exit)
			}
			wantVerdict := cove.VerdictOK
			if c.exit != 0 {
				wantVerdict = cove.VerdictExitNonzero
			}
			if res.Verdict != wantVerdict {
				t.Fatalf("verdict %s, want %s", res.Verdict, wantVerdict)
			}
		})
	}
}

func TestRunVerdicts(t *testing.T) {
	svc, _ := newTestService(t)
	cases := []struct {
		name    string
		req     cove.RunRequest
		verdict cove.Verdict
		message string
	}{
		{"timeout", cove.RunRequest{CodeRequest: cove.CodeRequest{Language: "python", Code: "while True: pass"}, Limits: cove.Limits{Timeout: time.Second}},
			cove.VerdictTimeout, "killed: wall-clock timeout after 1s"},
		{"oom", cove.RunRequest{CodeRequest: cove.CodeRequest{Language: "python", Code: "b=[]\nwhile True: b.append(bytearray(1<<23))"}, Limits: cove.Limits{MemoryBytes: 64 << 20}},
			cove.VerdictOOMKilled, "killed: out of memory (limit 64 MiB)"},
		{"output", cove.RunRequest{CodeRequest: cove.CodeRequest{Language: "bash", Code: "yes"}, Limits: cove.Limits{OutputBytes: 1 << 20}},
			cove.VerdictOutputLimit, "output truncated at 1 MiB"},
		{"signal", cove.RunRequest{CodeRequest: cove.CodeRequest{Language: "bash", Code: "kill -SEGV $$"}},
			cove.VerdictKilled, "killed by SIGSEGV"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			res := run(t, svc, c.req)
			if res.Verdict != c.verdict || res.Message != c.message {
				t.Fatalf("got verdict %s message %q (exit %d, stderr %q), want %s %q", res.Verdict, res.Message, res.ExitCode, res.Stderr, c.verdict, c.message)
			}
			if c.verdict == cove.VerdictOutputLimit && (len(res.Stdout) != 1<<20 || !res.StdoutTruncated) {
				t.Fatalf("stdout %d bytes truncated=%v, want exactly 1 MiB and truncated", len(res.Stdout), res.StdoutTruncated)
			}
		})
	}
}

func TestInvalidRequests(t *testing.T) {
	svc, _ := newTestService(t)
	ctx := context.Background()
	_, err := svc.Run(ctx, cove.RunRequest{CodeRequest: cove.CodeRequest{Language: "cobol", Code: "x"}})
	if cove.ErrorCode(err) != cove.CodeInvalid || !strings.Contains(err.Error(), "python") {
		t.Fatalf("unknown language: %v", err)
	}
	// TypeScript that does not compile is the program's failure, as a
	// JavaScript syntax error is node's: a result, not a bad request.
	st, err := svc.Run(ctx, cove.RunRequest{CodeRequest: cove.CodeRequest{Language: "ts", Code: "const = ;"}})
	if err != nil {
		t.Fatalf("typescript syntax error: %v", err)
	}
	res, err := cove.Collect(st)
	if err != nil || res.Verdict != cove.VerdictExitNonzero || res.ExitCode != 1 || !strings.HasPrefix(res.Stderr, "main.ts:1:7: error:") {
		t.Fatalf("typescript syntax error: %+v, %v", res, err)
	}
	_, err = svc.Run(ctx, cove.RunRequest{CodeRequest: cove.CodeRequest{Language: "python", Code: "1"}, Limits: cove.Limits{MemoryBytes: 1}})
	if cove.ErrorCode(err) != cove.CodeInvalid {
		t.Fatalf("tiny memory: %v", err)
	}
	_, err = svc.Exec(ctx, "nope", cove.ExecRequest{Cmd: []string{"true"}})
	if !errors.Is(err, &cove.Error{Code: cove.CodeNotFound}) {
		t.Fatalf("missing sandbox: %v", err)
	}
	if list, _ := svc.ListSandboxes(ctx, cove.ListOptions{}); len(list.Sandboxes) != 0 {
		t.Fatalf("failed runs left sandboxes: %v", list)
	}
}

func TestSandboxLifecycle(t *testing.T) {
	svc, _ := newTestService(t)
	ctx := context.Background()
	sb, err := svc.CreateSandbox(ctx, cove.SandboxSpec{Language: "python", Env: map[string]string{"GREETING": "hi"}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := svc.Exec(ctx, sb.ID, cove.ExecRequest{Shell: "echo $GREETING > note; cat note; echo $HOME $PATH"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := cove.Collect(st)
	if err != nil {
		t.Fatal(err)
	}
	if res.Stdout != "hi\n/workspace /usr/local/bin:/usr/bin:/bin\n" {
		t.Fatalf("got %q", res.Stdout)
	}
	st, err = svc.RunCode(ctx, sb.ID, cove.CodeRequest{Code: "print(open('note').read().strip())"})
	if err != nil {
		t.Fatal(err)
	}
	if res, _ := cove.Collect(st); res == nil || res.Stdout != "hi\n" {
		t.Fatalf("files do not persist between runs: %+v", res)
	}
	if err := svc.DeleteSandbox(ctx, sb.ID); err != nil {
		t.Fatal(err)
	}
	if err := svc.DeleteSandbox(ctx, sb.ID); cove.ErrorCode(err) != cove.CodeNotFound {
		t.Fatalf("second delete: %v, want not_found", err)
	}
	if _, err := svc.GetSandbox(ctx, sb.ID); cove.ErrorCode(err) != cove.CodeNotFound {
		t.Fatalf("deleted sandbox: %v", err)
	}
}

// TestCodeKeepsUserFiles checks that running code never replaces a file
// of the user's with the program: cove writes the program to main.py (or
// the given filename) and replaces only what it wrote there itself.
func TestCodeKeepsUserFiles(t *testing.T) {
	svc, _ := newTestService(t)
	ctx := context.Background()
	sb, err := svc.CreateSandbox(ctx, cove.SandboxSpec{Language: "python"})
	if err != nil {
		t.Fatal(err)
	}
	run := func(req cove.CodeRequest) (string, error) {
		st, err := svc.RunCode(ctx, sb.ID, req)
		if err != nil {
			return "", err
		}
		res, err := cove.Collect(st)
		if err != nil {
			return "", err
		}
		return res.Stdout, nil
	}
	read := func(name string) string {
		rc, _, err := svc.ReadFile(ctx, sb.ID, name)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		b, _ := io.ReadAll(rc)
		return string(b)
	}
	// Runs one after another replace the program file cove wrote.
	for _, code := range []string{"print(1)", "print(22)", "print(22)"} {
		if out, err := run(cove.CodeRequest{Code: code}); err != nil || out != strings.TrimPrefix(strings.TrimSuffix(code, ")"), "print(")+"\n" {
			t.Fatalf("%s: %q %v", code, out, err)
		}
	}
	// A main.py of the user's stays, and the error says what to do.
	if _, err := svc.WriteFile(ctx, sb.ID, "main.py", strings.NewReader("MINE"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = run(cove.CodeRequest{Code: "print(3)"})
	if cove.ErrorCode(err) != cove.CodeConflict || !strings.Contains(err.Error(), "main.py") || !strings.Contains(err.Error(), "filename") {
		t.Fatalf("code over the user's main.py: %v, want a conflict naming the file and the way out", err)
	}
	if got := read("main.py"); got != "MINE" {
		t.Fatalf("main.py is now %q", got)
	}
	if out, err := run(cove.CodeRequest{Code: "print(open('main.py').read())", Filename: "other.py"}); err != nil || out != "MINE\n" {
		t.Fatalf("code under another name: %q %v", out, err)
	}
	// A user's file that holds the very program is no loss.
	if out, err := run(cove.CodeRequest{Code: "MINE", Filename: "main.py"}); cove.ErrorCode(err) == cove.CodeConflict {
		t.Fatalf("the same content: %q %v", out, err)
	}
	// A program file of cove's that the user changed since is the user's.
	if _, err := svc.WriteFile(ctx, sb.ID, "other.py", strings.NewReader("print('edited')"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := run(cove.CodeRequest{Code: "print(4)", Filename: "other.py"}); cove.ErrorCode(err) != cove.CodeConflict {
		t.Fatalf("code over an edited program file: %v, want a conflict", err)
	}
	if got := read("other.py"); got != "print('edited')" {
		t.Fatalf("other.py is now %q", got)
	}
	// A one-call run may not send a file under the program's own name.
	_, err = svc.Run(ctx, cove.RunRequest{CodeRequest: cove.CodeRequest{Language: "python", Code: "print(5)"}, Files: map[string][]byte{"main.py": []byte("x")}})
	if cove.ErrorCode(err) != cove.CodeInvalid || !strings.Contains(err.Error(), "main.py") {
		t.Fatalf("run with a file named main.py: %v, want invalid", err)
	}
}

// TestCodeDoesNotReadHugeProgramFiles turns the program file cove wrote
// into a sparse file of several GiB, which costs user code nothing, and
// checks that the next run refuses it at once: hashing it all to tell
// whether it is still cove's kept the run, and cove's CPU, busy for most
// of a minute.
func TestCodeDoesNotReadHugeProgramFiles(t *testing.T) {
	svc, _ := newTestService(t)
	ctx := context.Background()
	l := cove.DefaultLimits()
	l.DiskBytes = 4 << 30
	sb, err := svc.CreateSandbox(ctx, cove.SandboxSpec{Language: "python", Limits: l})
	if err != nil {
		t.Skipf("a sandbox with a disk of 4 GiB: %v", err)
	}
	st, err := svc.RunCode(ctx, sb.ID, cove.CodeRequest{Code: "import os; os.truncate('main.py', 4 << 30)"})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := cove.Collect(st); err != nil || res.Verdict != cove.VerdictOK {
		t.Fatalf("growing main.py: %+v %v", res, err)
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	start := time.Now()
	_, err = svc.RunCode(rctx, sb.ID, cove.CodeRequest{Code: "print(2)"})
	if cove.ErrorCode(err) != cove.CodeConflict {
		t.Fatalf("a run over a 4 GiB main.py: %v after %v, want a conflict at once", err, time.Since(start))
	}
}

func TestCancelKillsProgram(t *testing.T) {
	svc, _ := newTestService(t)
	ctx, cancel := context.WithCancel(context.Background())
	st, err := svc.Run(ctx, cove.RunRequest{CodeRequest: cove.CodeRequest{Language: "bash", Code: "echo started; sleep 100"}})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := st.Next()
	if err != nil || string(ev.Data) != "started\n" {
		t.Fatalf("first event %+v %v", ev, err)
	}
	start := time.Now()
	cancel()
	for {
		if _, err = st.Next(); err != nil {
			break
		}
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("after cancel Next returned %v, want context.Canceled", err)
	}
	st.Close()
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("cancellation took %v", d)
	}
	if list, _ := svc.ListSandboxes(context.Background(), cove.ListOptions{}); len(list.Sandboxes) != 0 {
		t.Fatalf("cancelled run left sandboxes: %v", list)
	}
}

// TestPythonLinesStreamWhole checks that Python's standard output is
// line-buffered, as on a terminal: each printed line arrives in one piece
// and as soon as it is printed, and an explicit flush sends a partial line.
func TestPythonLinesStreamWhole(t *testing.T) {
	svc, _ := newTestService(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code := "import sys, time\nprint('hello from', 3)\nprint('oops', file=sys.stderr)\nprint('x', end='', flush=True)\ntime.sleep(0.3)\nprint('y')\n"
	st, err := svc.Run(ctx, cove.RunRequest{CodeRequest: cove.CodeRequest{Language: "python", Code: code}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var stdout []string
	start := time.Now()
	var firstAt time.Duration
	for {
		ev, err := st.Next()
		if err != nil {
			t.Fatal(err)
		}
		if ev.Type == cove.EventExit {
			if ev.Result.Verdict != cove.VerdictOK {
				t.Fatalf("%+v", ev.Result)
			}
			break
		}
		if ev.Type == cove.EventStdout {
			if stdout == nil {
				firstAt = time.Since(start)
			}
			stdout = append(stdout, string(ev.Data))
		}
	}
	// The reader may find the flushed "x" with the first line, but never
	// a line in pieces.
	if len(stdout) < 2 || !strings.HasPrefix(stdout[0], "hello from 3\n") || strings.Join(stdout, "") != "hello from 3\nxy\n" {
		t.Fatalf("stdout came as %q", stdout)
	}
	if total := time.Since(start); firstAt > total-200*time.Millisecond {
		t.Fatalf("the first line came after %s of %s: it did not stream", firstAt, total)
	}
}

// TestOutputOrder checks that output written to standard output before a
// failure's traceback on standard error arrives before it, every time.
func TestOutputOrder(t *testing.T) {
	svc, _ := newTestService(t)
	ctx := context.Background()
	sb, err := svc.CreateSandbox(ctx, cove.SandboxSpec{Language: "python"})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 15; i++ {
		st, err := svc.RunCode(ctx, sb.ID, cove.CodeRequest{Code: "print('before')\n1/0"})
		if err != nil {
			t.Fatal(err)
		}
		var order []cove.EventType
		for {
			ev, err := st.Next()
			if err != nil {
				t.Fatal(err)
			}
			if ev.Type == cove.EventExit {
				break
			}
			order = append(order, ev.Type)
		}
		st.Close()
		if len(order) < 2 || order[0] != cove.EventStdout {
			t.Fatalf("run %d: events %v, want the printed line before the traceback", i, order)
		}
	}
	// A background process's log keeps the order too.
	for i := 0; i < 10; i++ {
		p, err := svc.StartProcess(ctx, sb.ID, cove.ProcessRequest{Cmd: []string{"python3", "-c", "print('before', flush=True)\n1/0"}})
		if err != nil {
			t.Fatal(err)
		}
		st, err := svc.ProcessLogs(ctx, sb.ID, p.PID, true)
		if err != nil {
			t.Fatal(err)
		}
		var order []cove.EventType
		for {
			ev, err := st.Next()
			if err != nil || ev.Type == cove.EventExit {
				break
			}
			order = append(order, ev.Type)
		}
		st.Close()
		if len(order) < 2 || order[0] != cove.EventStdout {
			t.Fatalf("process %d: log events %v, want the printed line before the traceback", i, order)
		}
	}
}

// TestProcessTimeoutMessage checks that a background process stopped at
// its own timeout is said to be stopped at that timeout, not at the
// sandbox's limit, in its logs, its state, the list and a wait.
func TestProcessTimeoutMessage(t *testing.T) {
	svc, _ := newTestService(t)
	ctx := context.Background()
	sb, err := svc.CreateSandbox(ctx, cove.SandboxSpec{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := svc.StartProcess(ctx, sb.ID, cove.ProcessRequest{Shell: "sleep 30", Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	st, err := svc.ProcessLogs(ctx, sb.ID, p.PID, true)
	if err != nil {
		t.Fatal(err)
	}
	res, err := cove.Collect(st)
	if err != nil {
		t.Fatal(err)
	}
	const want = "killed: wall-clock timeout after 300ms"
	if res.Verdict != cove.VerdictTimeout || res.Message != want || res.Limits.Timeout != 300*time.Millisecond {
		t.Errorf("logs: %s %q (limit %s), want timeout %q", res.Verdict, res.Message, res.Limits.Timeout, want)
	}
	got, err := svc.GetProcess(ctx, sb.ID, p.PID)
	if err != nil || got.Result == nil || got.Result.Message != want {
		t.Errorf("process: %+v %v", got, err)
	}
	ps, err := svc.ListProcesses(ctx, sb.ID)
	if err != nil || len(ps) != 1 || ps[0].Result == nil || ps[0].Result.Message != want {
		t.Errorf("list: %+v %v", ps, err)
	}
	waited, err := svc.WaitProcess(ctx, sb.ID, p.PID)
	if err != nil || waited.Result == nil || waited.Result.Message != want {
		t.Errorf("wait: %+v %v", waited, err)
	}
}

// TestWaitProcess: WaitProcess returns a background process once it has
// exited, with its result, at once for one that has already exited; a
// context that ends first is its error, and the process runs on.
func TestWaitProcess(t *testing.T) {
	svc, _ := newTestService(t)
	ctx := context.Background()
	sb, err := svc.CreateSandbox(ctx, cove.SandboxSpec{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := svc.StartProcess(ctx, sb.ID, cove.ProcessRequest{Name: "late", Shell: "echo out; sleep 0.5; exit 3"})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	got, err := svc.WaitProcess(ctx, sb.ID, p.PID)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("WaitProcess returned after %v, before the process exited", d)
	}
	if got.PID != p.PID || got.Name != "late" || got.State != cove.ProcessExited || got.Result == nil ||
		got.Result.Verdict != cove.VerdictExitNonzero || got.Result.ExitCode != 3 {
		t.Errorf("WaitProcess: %+v, result %+v; want exited with status 3", got, got.Result)
	}
	// Started without a timeout, it had none: its result says so rather
	// than show the sandbox's timeout of an execution.
	if got.Result != nil && got.Result.Limits.Timeout != 0 {
		t.Errorf("the result of a process started without a timeout gives one: %s", got.Result.Limits.Timeout)
	}
	again, err := svc.WaitProcess(ctx, sb.ID, p.PID)
	if err != nil || again.Result == nil || again.Result.ExitCode != 3 {
		t.Errorf("WaitProcess of an exited process: %+v, %v", again, err)
	}

	sleeper, err := svc.StartProcess(ctx, sb.ID, cove.ProcessRequest{Shell: "sleep 30"})
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if _, err := svc.WaitProcess(short, sb.ID, sleeper.PID); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("WaitProcess past its deadline: %v, want the context's error", err)
	}
	if now, err := svc.GetProcess(ctx, sb.ID, sleeper.PID); err != nil || now.State != cove.ProcessRunning {
		t.Errorf("after a wait that timed out: %+v, %v, want it running", now, err)
	}

	for what, err := range map[string]error{
		"an unknown pid":     func() error { _, err := svc.WaitProcess(ctx, sb.ID, 99999); return err }(),
		"an unknown sandbox": func() error { _, err := svc.WaitProcess(ctx, "sb-nope", 1); return err }(),
	} {
		if cove.ErrorCode(err) != cove.CodeNotFound {
			t.Errorf("waiting for %s: %v, want not_found", what, err)
		}
	}
}

// TestListRefusesANegativePage: a negative page size is a mistake to say,
// not a page of the default size.
func TestListRefusesANegativePage(t *testing.T) {
	svc, _ := newTestService(t)
	_, err := svc.ListSandboxes(context.Background(), cove.ListOptions{Limit: -1})
	if cove.ErrorCode(err) != cove.CodeInvalid || !strings.Contains(err.Error(), "limit -1") {
		t.Fatalf("got %v, want an invalid error naming the limit", err)
	}
}
