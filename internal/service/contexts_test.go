package service

import (
	"bytes"
	"context"
	"encoding/base64"
	"image/png"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cove-sandbox/cove"
)

// newContext creates a sandbox with limits and a context in it.
func newContext(t *testing.T, svc *Service, language string, limits cove.Limits) (string, *cove.Context) {
	t.Helper()
	ctx := context.Background()
	sb, err := svc.CreateSandbox(ctx, cove.SandboxSpec{Limits: limits})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.DeleteSandbox(context.Background(), sb.ID) })
	c, err := svc.CreateContext(ctx, sb.ID, cove.ContextSpec{Language: language})
	if err != nil {
		t.Fatalf("creating a %s context: %v", language, err)
	}
	return sb.ID, c
}

// cell runs code in a context and collects the run.
func cell(t *testing.T, svc cove.Service, id, cid, code string, timeout time.Duration) *cove.CellRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	st, err := svc.RunCell(ctx, id, cid, cove.CellRequest{Code: code, Timeout: timeout})
	if err != nil {
		t.Fatalf("running %q: %v", code, err)
	}
	run, err := cove.CollectCell(st)
	if err != nil {
		t.Fatalf("collecting %q: %v", code, err)
	}
	return run
}

// resultText is the text/plain of a run's result event.
func resultText(run *cove.CellRun) string {
	for _, ev := range run.Outputs {
		if ev.Type == cove.EventResult {
			return ev.Bundle["text/plain"]
		}
	}
	return ""
}

func exceptionOf(run *cove.CellRun) *cove.CellError {
	for _, ev := range run.Outputs {
		if ev.Type == cove.EventException {
			return ev.Exception
		}
	}
	return nil
}

func TestContextPersistenceAndIsolation(t *testing.T) {
	svc, _ := newTestService(t)
	for _, language := range []string{"python", "javascript", "typescript"} {
		t.Run(language, func(t *testing.T) {
			t.Parallel()
			id, c := newContext(t, svc, language, cove.Limits{})
			decl := map[string]string{"python": "x = 41\ndef inc(v):\n    return v + 1", "javascript": "let x = 41\nfunction inc(v) { return v + 1 }", "typescript": "let x: number = 41\nfunction inc(v: number): number { return v + 1 }"}[language]
			if run := cell(t, svc, id, c.ID, decl, 0); run.Verdict != cove.VerdictOK {
				t.Fatalf("declaring: %+v %+v", run.ExecResult, exceptionOf(run))
			}
			run := cell(t, svc, id, c.ID, "inc(x)", 0)
			if got := resultText(run); got != "42" || run.Verdict != cove.VerdictOK {
				t.Fatalf("inc(x) gave %q (%s, %+v)", got, run.Verdict, exceptionOf(run))
			}
			// Another context of the same sandbox sees none of it.
			other, err := svc.CreateContext(context.Background(), id, cove.ContextSpec{Language: language})
			if err != nil {
				t.Fatal(err)
			}
			run = cell(t, svc, id, other.ID, "x", 0)
			if x := exceptionOf(run); run.Verdict != cove.VerdictError || x == nil || (x.Name != "NameError" && x.Name != "ReferenceError") {
				t.Fatalf("x in another context: %s %+v", run.Verdict, x)
			}
			got, err := svc.GetContext(context.Background(), id, c.ID)
			if err != nil || got.Runs != 2 || got.Language != language || got.Busy {
				t.Fatalf("context %+v, %v", got, err)
			}
		})
	}
}

func TestContextOutputsInOrder(t *testing.T) {
	svc, _ := newTestService(t)
	id, c := newContext(t, svc, "python", cove.Limits{})
	run := cell(t, svc, id, c.ID, "import sys\nprint('one')\nprint('two', file=sys.stderr)\nprint('three')\n6 * 7", 0)
	if run.Stdout != "one\nthree\n" || run.Stderr != "two\n" || resultText(run) != "42" {
		t.Fatalf("stdout %q stderr %q result %q", run.Stdout, run.Stderr, resultText(run))
	}
	last := run.Outputs[len(run.Outputs)-1]
	if last.Type != cove.EventResult {
		t.Fatalf("the result is not last: %+v", run.Outputs)
	}
}

func TestContextChartAndTable(t *testing.T) {
	svc, _ := newTestService(t)
	id, c := newContext(t, svc, "python", cove.Limits{})
	if run := cell(t, svc, id, c.ID, "import matplotlib", 0); run.Verdict != cove.VerdictOK {
		t.Skipf("matplotlib is not installed (python3-matplotlib): %+v", exceptionOf(run))
	}
	run := cell(t, svc, id, c.ID, "import matplotlib.pyplot as plt\nfig = plt.figure(figsize=(4, 3), dpi=100)\nplt.plot([1, 2, 3], [1, 4, 9])\nplt.show()", 0)
	var img string
	for _, ev := range run.Outputs {
		if ev.Type == cove.EventDisplay {
			img = ev.Bundle["image/png"]
		}
	}
	if img == "" {
		t.Fatalf("no chart came back: %+v", run.Outputs)
	}
	b, err := base64.StdEncoding.DecodeString(img)
	if err != nil {
		t.Fatal(err)
	}
	im, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("the chart is not a PNG: %v", err)
	}
	if sz := im.Bounds().Size(); sz.X != 400 || sz.Y != 300 {
		t.Fatalf("chart of %v, want 400x300", sz)
	}

	run = cell(t, svc, id, c.ID, "import pandas as pd\npd.DataFrame({'a': [1, 2], 'b': ['x', 'y']})", 0)
	var html string
	for _, ev := range run.Outputs {
		if ev.Type == cove.EventResult {
			html = ev.Bundle["text/html"]
		}
	}
	if !strings.Contains(html, "<table") || !strings.Contains(html, "<td>x</td>") {
		t.Fatalf("DataFrame HTML %q (%+v)", html, exceptionOf(run))
	}
}

func TestContextErrorLines(t *testing.T) {
	svc, _ := newTestService(t)
	cases := []struct {
		language, code, name string
		line                 int
	}{
		{"python", "a = 1\nb = 0\nprint(a / b)", "ZeroDivisionError", 3},
		{"python", "x = (\n", "SyntaxError", 1},
		{"javascript", "const o = null\n\no.field", "TypeError", 3},
		{"typescript", "type Point = { x: number }\ninterface Shape { area(): number }\nconst p: Point = { x: 1 }\n\nthrow new RangeError(`bad ${p.x}`)", "RangeError", 5},
		{"typescript", "const a: number = 1\nconst b = ;", "SyntaxError", 2},
	}
	for _, c := range cases {
		t.Run(c.language+"_"+c.name, func(t *testing.T) {
			id, cx := newContext(t, svc, c.language, cove.Limits{})
			run := cell(t, svc, id, cx.ID, c.code, 0)
			x := exceptionOf(run)
			if run.Verdict != cove.VerdictError || x == nil {
				t.Fatalf("verdict %s, exception %+v", run.Verdict, x)
			}
			if x.Name != c.name || x.Line != c.line {
				t.Fatalf("exception %s at line %d, want %s at line %d: %+v", x.Name, x.Line, c.name, c.line, x)
			}
		})
	}
}

func TestContextTopLevelAwaitAndImport(t *testing.T) {
	svc, _ := newTestService(t)
	id, c := newContext(t, svc, "typescript", cove.Limits{})
	if err := writeString(svc, id, "lib.js", "module.exports = { twice: (n) => 2 * n }\n"); err != nil {
		t.Fatal(err)
	}
	run := cell(t, svc, id, c.ID, "import path from 'node:path'\nconst lib = require('./lib.js')\nconst n: number = await Promise.resolve(21)", 0)
	if run.Verdict != cove.VerdictOK {
		t.Fatalf("%s %+v", run.Verdict, exceptionOf(run))
	}
	run = cell(t, svc, id, c.ID, "path.basename('/a/b.txt') + ':' + lib.twice(n)", 0)
	if got := resultText(run); got != "'b.txt:42'" {
		t.Fatalf("result %q (%+v)", got, exceptionOf(run))
	}
}

func writeString(svc *Service, id, name, s string) error {
	_, err := svc.WriteFile(context.Background(), id, name, strings.NewReader(s), 0)
	return err
}

func TestContextInterrupt(t *testing.T) {
	svc, _ := newTestService(t)
	id, c := newContext(t, svc, "python", cove.Limits{})
	cell(t, svc, id, c.ID, "kept = 'still here'", 0)
	st, err := svc.RunCell(context.Background(), id, c.ID, cove.CellRequest{Code: "import time\nprint('started', flush=True)\nwhile True:\n    time.sleep(0.01)"})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := st.Next()
	if err != nil || string(ev.Data) != "started\n" {
		t.Fatalf("first event %+v, %v", ev, err)
	}
	// A second cell is refused while one runs.
	if _, err := svc.RunCell(context.Background(), id, c.ID, cove.CellRequest{Code: "1"}); cove.ErrorCode(err) != cove.CodeConflict {
		t.Fatalf("a concurrent cell: %v, want conflict", err)
	}
	if err := svc.InterruptContext(context.Background(), id, c.ID); err != nil {
		t.Fatal(err)
	}
	run, err := cove.CollectCell(st)
	if err != nil {
		t.Fatal(err)
	}
	if x := exceptionOf(run); run.Verdict != cove.VerdictKilled || x == nil || x.Name != "KeyboardInterrupt" {
		t.Fatalf("interrupted cell: %s %+v", run.Verdict, x)
	}
	if got := resultText(cell(t, svc, id, c.ID, "kept", 0)); got != "'still here'" {
		t.Fatalf("after the interrupt: %q", got)
	}
}

func TestContextTimeoutRestarts(t *testing.T) {
	svc, _ := newTestService(t)
	id, c := newContext(t, svc, "python", cove.Limits{})
	cell(t, svc, id, c.ID, "lost = 1", 0)
	// A cell that ignores the interrupt is killed; the context restarts.
	start := time.Now()
	run := cell(t, svc, id, c.ID, "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass", time.Second)
	if run.Verdict != cove.VerdictTimeout || !strings.Contains(run.Message, "restarted") {
		t.Fatalf("verdict %s, message %q", run.Verdict, run.Message)
	}
	if d := time.Since(start); d > 6*time.Second {
		t.Fatalf("the timeout took %s", d)
	}
	run = cell(t, svc, id, c.ID, "lost", 0)
	if x := exceptionOf(run); x == nil || x.Name != "NameError" {
		t.Fatalf("state survived a restart: %s %+v", run.Verdict, x)
	}
	if got := resultText(cell(t, svc, id, c.ID, "1 + 1", 0)); got != "2" {
		t.Fatalf("after the restart: %q", got)
	}
	got, err := svc.GetContext(context.Background(), id, c.ID)
	if err != nil || got.Restarts != 1 {
		t.Fatalf("context %+v, %v", got, err)
	}
	// A cell that stops at the interrupt keeps the state.
	cell(t, svc, id, c.ID, "kept = 2", 0)
	run = cell(t, svc, id, c.ID, "while True:\n    pass", 500*time.Millisecond)
	if run.Verdict != cove.VerdictTimeout || strings.Contains(run.Message, "restarted") {
		t.Fatalf("verdict %s, message %q", run.Verdict, run.Message)
	}
	if got := resultText(cell(t, svc, id, c.ID, "kept", 0)); got != "2" {
		t.Fatalf("after an interrupted timeout: %q", got)
	}
}

func TestContextMemoryKillRestarts(t *testing.T) {
	svc, _ := newTestService(t)
	id, c := newContext(t, svc, "python", cove.Limits{MemoryBytes: 128 << 20})
	run := cell(t, svc, id, c.ID, "b = bytearray(1 << 30)", 0)
	if run.Verdict != cove.VerdictOOMKilled || !strings.Contains(run.Message, "restarted") {
		t.Fatalf("verdict %s, message %q", run.Verdict, run.Message)
	}
	if got := resultText(cell(t, svc, id, c.ID, "2 + 2", 0)); got != "4" {
		t.Fatalf("after the memory kill: %q", got)
	}
}

func TestContextsRunConcurrently(t *testing.T) {
	svc, _ := newTestService(t)
	id, c := newContext(t, svc, "python", cove.Limits{})
	ids := []string{c.ID}
	for range 2 {
		o, err := svc.CreateContext(context.Background(), id, cove.ContextSpec{Language: "python"})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, o.ID)
	}
	start := time.Now()
	var wg sync.WaitGroup
	for i, cid := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run := cell(t, svc, id, cid, "import time\ntime.sleep(0.5)\n"+strings.Repeat("1", i+1), 0)
			if got := resultText(run); got != strings.Repeat("1", i+1) {
				t.Errorf("context %d gave %q", i, got)
			}
		}()
	}
	wg.Wait()
	if d := time.Since(start); d > 1400*time.Millisecond {
		t.Fatalf("three half-second cells took %s: they did not run at once", d)
	}
	list, err := svc.ListContexts(context.Background(), id)
	if err != nil || len(list) != 3 {
		t.Fatalf("list %v, %v", list, err)
	}
	if err := svc.DeleteContext(context.Background(), id, ids[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.GetContext(context.Background(), id, ids[0]); cove.ErrorCode(err) != cove.CodeNotFound {
		t.Fatalf("a deleted context: %v", err)
	}
}

func TestContextBadInput(t *testing.T) {
	svc, _ := newTestService(t)
	sb, err := svc.CreateSandbox(context.Background(), cove.SandboxSpec{})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.DeleteSandbox(context.Background(), sb.ID)
	for _, c := range []struct {
		spec cove.ContextSpec
		code cove.Code
		want string
	}{
		{cove.ContextSpec{}, cove.CodeInvalid, "no language"},
		{cove.ContextSpec{Language: "cobol"}, cove.CodeInvalid, `unknown language "cobol": contexts run python (py), javascript (js, node) or typescript (ts)`},
		{cove.ContextSpec{Language: "bash"}, cove.CodeInvalid, "python, javascript or typescript"},
	} {
		_, err := svc.CreateContext(context.Background(), sb.ID, c.spec)
		if cove.ErrorCode(err) != c.code || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: %v, want %s mentioning %q", c.spec, err, c.code, c.want)
		}
	}
	if _, err := svc.RunCell(context.Background(), sb.ID, "ctx-nope", cove.CellRequest{Code: "1"}); cove.ErrorCode(err) != cove.CodeNotFound {
		t.Errorf("unknown context: %v", err)
	}
	if _, err := svc.CreateContext(context.Background(), "nope", cove.ContextSpec{Language: "python"}); cove.ErrorCode(err) != cove.CodeNotFound {
		t.Errorf("unknown sandbox: %v", err)
	}
	// A stopped sandbox has no contexts, and refuses new ones.
	if _, err := svc.StopSandbox(context.Background(), sb.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateContext(context.Background(), sb.ID, cove.ContextSpec{Language: "python"}); cove.ErrorCode(err) != cove.CodeConflict {
		t.Errorf("context in a stopped sandbox: %v", err)
	}
	if list, err := svc.ListContexts(context.Background(), sb.ID); err != nil || len(list) != 0 {
		t.Errorf("contexts of a stopped sandbox: %v %v", list, err)
	}
}

// TestContextRestartNumbersCellsAnew checks that after a restart the
// tracebacks name cells from 1 again, as the notebook numbers them.
func TestContextRestartNumbersCellsAnew(t *testing.T) {
	svc, _ := newTestService(t)
	id, cx := newContext(t, svc, "python", cove.Limits{})
	cell(t, svc, id, cx.ID, "x = 1", 0)
	cell(t, svc, id, cx.ID, "y = 2", 0)
	if x := exceptionOf(cell(t, svc, id, cx.ID, "1/0", 0)); x == nil || !strings.Contains(strings.Join(x.Traceback, "\n"), "<cell 3>") {
		t.Fatalf("third cell's exception: %+v", x)
	}
	if _, err := svc.RestartContext(context.Background(), id, cx.ID); err != nil {
		t.Fatal(err)
	}
	if x := exceptionOf(cell(t, svc, id, cx.ID, "1/0", 0)); x == nil || !strings.Contains(strings.Join(x.Traceback, "\n"), "<cell 1>") {
		t.Fatalf("first cell after a restart: %+v", x)
	}
}

// TestContextCellAfterCancelledCell checks that a cell sent right after
// the caller cancelled the one before runs, rather than being refused
// while the interrupted cell ends.
func TestContextCellAfterCancelledCell(t *testing.T) {
	svc, _ := newTestService(t)
	id, c := newContext(t, svc, "python", cove.Limits{})
	for i := range 3 {
		ctx, cancel := context.WithCancel(context.Background())
		st, err := svc.RunCell(ctx, id, c.ID, cove.CellRequest{Code: "import time\nprint('started', flush=True)\nwhile True:\n    time.sleep(0.01)"})
		if err != nil {
			t.Fatal(err)
		}
		if ev, err := st.Next(); err != nil || string(ev.Data) != "started\n" {
			t.Fatalf("first event %+v, %v", ev, err)
		}
		cancel()
		// The stream is closed on another goroutine, as a server's
		// handler does when its request is cancelled.
		go st.Close()
		st2, err := svc.RunCell(context.Background(), id, c.ID, cove.CellRequest{Code: "6 * 7"})
		if err != nil {
			t.Fatalf("round %d: the cell after a cancelled one: %v", i, err)
		}
		run, err := cove.CollectCell(st2)
		if err != nil {
			t.Fatal(err)
		}
		if got := resultText(run); got != "42" {
			t.Fatalf("round %d: result %q", i, got)
		}
	}
	// The next cell may come before the news of the cancellation (a
	// server sees a closed connection a moment later): it waits for it.
	{
		ctx, cancel := context.WithCancel(context.Background())
		st, err := svc.RunCell(ctx, id, c.ID, cove.CellRequest{Code: "import time\nprint('started', flush=True)\nwhile True:\n    time.sleep(0.01)"})
		if err != nil {
			t.Fatal(err)
		}
		st.Next()
		time.AfterFunc(100*time.Millisecond, func() { cancel(); st.Close() })
		st2, err := svc.RunCell(context.Background(), id, c.ID, cove.CellRequest{Code: "6 * 7"})
		if err != nil {
			t.Fatalf("a cell sent before the one before it was known cancelled: %v", err)
		}
		if run, err := cove.CollectCell(st2); err != nil || resultText(run) != "42" {
			t.Fatalf("the cell after: %v, %v", run, err)
		}
	}
	// A cell that is not being interrupted still refuses another, after
	// the short grace that lets a cancellation in flight arrive.
	st, err := svc.RunCell(context.Background(), id, c.ID, cove.CellRequest{Code: "import time\nprint('started', flush=True)\ntime.sleep(5)"})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.Next()
	start := time.Now()
	if _, err := svc.RunCell(context.Background(), id, c.ID, cove.CellRequest{Code: "1"}); cove.ErrorCode(err) != cove.CodeConflict || time.Since(start) < busyCellGrace || time.Since(start) > busyCellGrace+time.Second {
		t.Fatalf("a concurrent cell: %v after %s, want conflict after %s", err, time.Since(start), busyCellGrace)
	}
}

// TestContextKilledForMemoryWhileIdle: the contexts of a sandbox share
// its memory, and the kernel's OOM killer may take an idle context's
// interpreter for another context's cell. The idle context's next cell
// says, before its own output and in its result, that its interpreter was
// killed while idle and its state is lost.
func TestContextKilledForMemoryWhileIdle(t *testing.T) {
	svc, _ := newTestService(t)
	id, c1 := newContext(t, svc, "python", cove.Limits{MemoryBytes: 160 << 20})
	c2, err := svc.CreateContext(context.Background(), id, cove.ContextSpec{Language: "python"})
	if err != nil {
		t.Fatal(err)
	}
	cell(t, svc, id, c1.ID, "v = 'c1'", 0)
	if run := cell(t, svc, id, c2.ID, "big = bytearray(90 << 20)\nv = 'c2'", 0); run.Verdict != cove.VerdictOK {
		t.Fatalf("c2's big cell: %+v", run.ExecResult)
	}
	if run := cell(t, svc, id, c1.ID, "big2 = bytearray(90 << 20)\nv", 0); run.Verdict != cove.VerdictOK || resultText(run) != "'c1'" {
		t.Fatalf("c1's big cell: %+v %q", run.ExecResult, resultText(run))
	}
	run := cell(t, svc, id, c2.ID, "print('out')\nv", 0)
	if x := exceptionOf(run); x == nil || x.Name != "NameError" {
		t.Fatalf("c2 after the OOM kill: %+v %+v", run.ExecResult, x)
	}
	if !strings.Contains(run.Message, "while the context was idle, its interpreter was killed for lack of memory") || !strings.Contains(run.Message, "without the state of the earlier cells") {
		t.Errorf("the result's message %q does not say that the state was lost, and why", run.Message)
	}
	if ev := run.Outputs[0]; ev.Type != cove.EventStderr || !strings.HasPrefix(string(ev.Data), "cove: while the context was idle") {
		t.Errorf("the first output %s %q: want the note on stderr", ev.Type, ev.Data)
	}
	if got, err := svc.GetContext(context.Background(), id, c2.ID); err != nil || got.Restarts != 1 || got.Runs != 1 {
		t.Errorf("c2: %+v, %v", got, err)
	}
	if run := cell(t, svc, id, c2.ID, "v = 1", 0); run.Message != "" || run.Verdict != cove.VerdictOK {
		t.Errorf("the cell after: %+v", run.ExecResult)
	}
}

// TestContextRestartDuringACell: a restart during a cell answers once the
// context is ready for the next cell (not busy), which runs at once, even
// while the killed cell's result is not read yet; that result says that a
// restart was asked for.
func TestContextRestartDuringACell(t *testing.T) {
	svc, _ := newTestService(t)
	id, c := newContext(t, svc, "python", cove.Limits{})
	ctx := context.Background()
	for i := range 6 {
		cell(t, svc, id, c.ID, "lost = 1", 0)
		st, err := svc.RunCell(ctx, id, c.ID, cove.CellRequest{Code: "import time\nprint('started', flush=True)\ntime.sleep(60)"})
		if err != nil {
			t.Fatal(err)
		}
		if ev, err := st.Next(); err != nil || string(ev.Data) != "started\n" {
			t.Fatalf("first event %+v, %v", ev, err)
		}
		got, err := svc.RestartContext(ctx, id, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Busy || got.Runs != 0 || got.Restarts != i+1 {
			t.Errorf("round %d: the restart's answer %+v: want an idle context", i, got)
		}
		run := cell(t, svc, id, c.ID, "'lost' in dir()", 0)
		if resultText(run) != "False" || run.Verdict != cove.VerdictOK {
			t.Errorf("round %d: the cell after the restart: %+v %q", i, run.ExecResult, resultText(run))
		}
		killed, err := cove.CollectCell(st)
		if err != nil {
			t.Fatal(err)
		}
		if killed.Verdict != cove.VerdictKilled || !strings.Contains(killed.Message, "restart of the context was asked for") || strings.Contains(killed.Message, "SIGKILL") {
			t.Errorf("round %d: the killed cell: %s %q", i, killed.Verdict, killed.Message)
		}
	}
	if got, err := svc.GetContext(ctx, id, c.ID); err != nil || got.Restarts != 6 || got.Busy {
		t.Errorf("the context after: %+v, %v", got, err)
	}
}

// TestContextsEndWithAnIdleStop: an idle context does not keep its
// sandbox running; once the idle timeout has stopped the sandbox, a call
// to the context says that the contexts ended with it and why it
// stopped, and after a start, that this context ended then.
func TestContextsEndWithAnIdleStop(t *testing.T) {
	svc, _ := newStoredService(t, Options{ReapInterval: time.Hour}) // reaped by hand below
	ctx := context.Background()
	sb, err := svc.CreateSandbox(ctx, cove.SandboxSpec{IdleTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	c, err := svc.CreateContext(ctx, sb.ID, cove.ContextSpec{Language: "python"})
	if err != nil {
		t.Fatal(err)
	}
	cell(t, svc, sb.ID, c.ID, "x = 1", 0)
	time.Sleep(400 * time.Millisecond)
	svc.reap(ctx)
	if got, err := svc.GetSandbox(ctx, sb.ID); err != nil || got.State != cove.StateStopped {
		t.Fatalf("after its idle timeout: %+v %v, want stopped", got, err)
	}
	_, err = svc.RunCell(ctx, sb.ID, c.ID, cove.CellRequest{Code: "x"})
	if want := "sandbox " + sb.ID + " is stopped (idle for 200ms), and its contexts ended when it stopped: start it and create a new context"; cove.ErrorCode(err) != cove.CodeConflict || cove.ErrorMessage(err) != want {
		t.Errorf("a cell in a context of the stopped sandbox: %v, want conflict %q", err, want)
	}
	// Other calls say why it stopped too.
	_, err = svc.Exec(ctx, sb.ID, cove.ExecRequest{Cmd: []string{"true"}})
	if want := "sandbox " + sb.ID + " is stopped (idle for 200ms): start it first"; cove.ErrorMessage(err) != want {
		t.Errorf("an execution in the stopped sandbox: %v, want %q", err, want)
	}
	if _, err := svc.StartSandbox(ctx, sb.ID); err != nil {
		t.Fatal(err)
	}
	_, err = svc.GetContext(ctx, sb.ID, c.ID)
	if want := "context " + c.ID + " ended when sandbox " + sb.ID + " stopped (idle for 200ms), with its state: create a new one"; cove.ErrorCode(err) != cove.CodeNotFound || cove.ErrorMessage(err) != want {
		t.Errorf("the context after a start: %v, want not found %q", err, want)
	}
	if _, err := svc.RunCell(ctx, sb.ID, "ctx-nope", cove.CellRequest{Code: "1"}); cove.ErrorMessage(err) != `no context "ctx-nope" in sandbox `+sb.ID {
		t.Errorf("an unknown context: %v", err)
	}
	// A stop on request says so.
	c, err = svc.CreateContext(ctx, sb.ID, cove.ContextSpec{Language: "python"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.StopSandbox(ctx, sb.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RestartContext(ctx, sb.ID, c.ID); !strings.Contains(cove.ErrorMessage(err), "is stopped (stopped on request), and its contexts ended when it stopped") {
		t.Errorf("a restart in the stopped sandbox: %v", err)
	}
}

// TestContextCallAsTheTTLEnds: while a sandbox whose TTL ended is being
// deleted, a call to its context says so, rather than that it is
// stopping.
func TestContextCallAsTheTTLEnds(t *testing.T) {
	svc, _ := newStoredService(t, Options{ReapInterval: time.Hour}) // reaped by hand below
	ctx := context.Background()
	sb, err := svc.CreateSandbox(ctx, cove.SandboxSpec{TTL: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	c, err := svc.CreateContext(ctx, sb.ID, cove.ContextSpec{Language: "python"})
	if err != nil {
		t.Fatal(err)
	}
	// An execution whose result nobody reads holds the deletion up for a
	// second (endWait).
	st, err := svc.Exec(ctx, sb.ID, cove.ExecRequest{Cmd: []string{"sh", "-c", "echo started; exec sleep 60"}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if ev, err := st.Next(); err != nil || string(ev.Data) != "started\n" {
		t.Fatalf("first event %+v, %v", ev, err)
	}
	time.Sleep(400 * time.Millisecond)
	reaped := make(chan struct{})
	go func() { svc.reap(ctx); close(reaped) }()
	want := "sandbox " + sb.ID + " is being deleted: its TTL (300ms) ended"
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		_, err := svc.GetContext(ctx, sb.ID, c.ID)
		if cove.ErrorCode(err) == cove.CodeConflict {
			if cove.ErrorMessage(err) != want {
				t.Errorf("a context call during the deletion: %v, want %q", err, want)
			}
			break
		}
		if err != nil && cove.ErrorCode(err) != cove.CodeConflict || time.Now().After(deadline) {
			t.Fatalf("no conflict while the sandbox was deleted: %v", err)
		}
	}
	<-reaped
}
