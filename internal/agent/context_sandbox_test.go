package agent_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/agent"
	"github.com/cove-sandbox/cove/internal/runtime"
	"github.com/cove-sandbox/cove/internal/runtime/native/nativetest"
)

// cellRun is what a cell produced.
type cellRun struct {
	stdout, stderr string
	results        []string // text/plain of each result
	displays       []map[string]string
	exceptions     []*cove.CellError
	res            *agent.CellResult
}

// runCell runs code in context id and collects its events.
func runCell(t *testing.T, ctx context.Context, c *agent.Client, id, code string, spec agent.CellSpec) *cellRun {
	t.Helper()
	spec.Code = code
	if spec.Filename == "" {
		spec.Filename = "<cell>"
	}
	cell, err := c.RunCell(ctx, id, &spec)
	if err != nil {
		t.Fatalf("RunCell(%q): %v", code, err)
	}
	defer cell.Close()
	return collectCell(t, cell)
}

func collectCell(t *testing.T, cell *agent.Cell) *cellRun {
	t.Helper()
	var r cellRun
	var out, errOut strings.Builder
	for {
		ev, err := cell.Next()
		if err != nil {
			t.Fatalf("Next: %v", err)
		}
		switch ev.Type {
		case "stdout":
			out.Write(ev.Data)
		case "stderr":
			errOut.Write(ev.Data)
		case "result":
			r.results = append(r.results, ev.Bundle["text/plain"])
		case "display":
			r.displays = append(r.displays, ev.Bundle)
		case "exception":
			r.exceptions = append(r.exceptions, ev.Exception)
		case "done":
			r.res = ev.Result
			r.stdout, r.stderr = out.String(), errOut.String()
			if _, err := cell.Next(); err == nil {
				t.Errorf("Next after done: no error")
			}
			return &r
		default:
			t.Fatalf("unexpected event %+v", ev)
		}
	}
}

// value runs code and returns the text of its one result.
func value(t *testing.T, ctx context.Context, c *agent.Client, id, code string) string {
	t.Helper()
	r := runCell(t, ctx, c, id, code, agent.CellSpec{TimeoutMS: 20000})
	if r.res.Status != "ok" || len(r.results) != 1 {
		t.Fatalf("%q in %s: %+v, result %+v, stderr %q", code, id, r, r.res, r.stderr)
	}
	return r.results[0]
}

// newSandbox starts a sandbox with limits.
func newSandbox(t *testing.T, name string, limits cove.Limits) (*agent.Client, context.Context) {
	t.Helper()
	b, _ := nativetest.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	inst, err := b.Create(ctx, runtime.Spec{ID: fmt.Sprintf("%s%d", name, os.Getpid()), Limits: limits})
	if err != nil {
		t.Fatalf("creating a sandbox: %v", err)
	}
	t.Cleanup(func() { inst.Destroy(context.Background()) })
	return inst.Agent(), ctx
}

var pyEnv = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/workspace", "LANG=C.UTF-8"}

func startPython(t *testing.T, ctx context.Context, c *agent.Client, id string) {
	t.Helper()
	if err := c.StartContext(ctx, &agent.ContextSpec{ID: id, Language: "python", Env: pyEnv, Dir: "/workspace"}); err != nil {
		t.Fatalf("StartContext(%s): %v", id, err)
	}
}

// TestContextsInASandbox runs Python contexts in a real sandbox: state
// that persists, interrupts, timeouts, deaths and output limits, and
// contexts side by side.
func TestContextsInASandbox(t *testing.T) {
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("/usr/bin/python3 is not installed")
	}
	c, ctx := newSandbox(t, "ctx", cove.DefaultLimits())
	startPython(t, ctx, c, "a")
	startPython(t, ctx, c, "b")

	t.Run("errors", func(t *testing.T) {
		err := c.StartContext(ctx, &agent.ContextSpec{ID: "a", Language: "python", Env: pyEnv})
		wantError(t, "a second context a", err, cove.CodeConflict)
		err = c.StartContext(ctx, &agent.ContextSpec{ID: "x", Language: "cobol", Env: pyEnv})
		wantError(t, "a cobol context", err, cove.CodeInvalid)
		_, err = c.RunCell(ctx, "nope", &agent.CellSpec{Code: "1"})
		wantError(t, "a cell in an unknown context", err, cove.CodeNotFound)
		wantError(t, "interrupting an unknown context", c.InterruptContext(ctx, "nope"), cove.CodeNotFound)
		wantError(t, "stopping an unknown context", c.StopContext(ctx, "nope"), cove.CodeNotFound)
		wantError(t, "restarting an unknown context", c.RestartContext(ctx, "nope"), cove.CodeNotFound)
		// An interpreter that fails at start says why.
		err = c.StartContext(ctx, &agent.ContextSpec{ID: "y", Language: "python", Env: append(pyEnv, "PYTHONHOME=/nonexistent"), Dir: "/workspace"})
		wantError(t, "a python that cannot start", err, cove.CodeUnavailable)
		if err != nil && !strings.Contains(err.Error(), "encodings") {
			t.Errorf("the start error lacks the interpreter's stderr: %v", err)
		}
		wantError(t, "the failed context is forgotten", c.StopContext(ctx, "y"), cove.CodeNotFound)
	})

	t.Run("persistence and isolation", func(t *testing.T) {
		r := runCell(t, ctx, c, "a", "import os\nx = 41\ndef f():\n    return x + 1\nprint('uid', os.getuid(), os.getcwd())\nf()", agent.CellSpec{})
		if r.res.Status != "ok" || r.stdout != "uid 1000 /workspace\n" || len(r.results) != 1 || r.results[0] != "42" {
			t.Fatalf("first cell: %+v %+v", r, r.res)
		}
		if got := value(t, ctx, c, "a", "f() * 2"); got != "84" {
			t.Errorf("f() * 2 = %s", got)
		}
		if got := value(t, ctx, c, "b", "'x' in dir()"); got != "False" {
			t.Errorf("context b sees a's x: %s", got)
		}
		r = runCell(t, ctx, c, "a", "1 / 0", agent.CellSpec{Filename: "<cell 4>"})
		if r.res.Status != "error" || len(r.exceptions) != 1 || r.exceptions[0].Name != "ZeroDivisionError" || r.exceptions[0].Line != 1 {
			t.Errorf("1 / 0: %+v %+v", r, r.res)
		}
		if len(r.exceptions) == 1 && !strings.Contains(strings.Join(r.exceptions[0].Traceback, ""), `File "<cell 4>", line 1`) {
			t.Errorf("traceback %q", r.exceptions[0].Traceback)
		}
		// What a child writes to the real stdout belongs to the cell.
		r = runCell(t, ctx, c, "a", "import subprocess\nsubprocess.run(['echo', 'child'])\nprint('parent')", agent.CellSpec{})
		if r.res.Status != "ok" || !strings.Contains(r.stdout, "child\n") || !strings.Contains(r.stdout, "parent\n") {
			t.Errorf("output of a child: %q %+v", r.stdout, r.res)
		}
	})

	t.Run("displays, stats and output between cells", func(t *testing.T) {
		r := runCell(t, ctx, c, "a", "print('a')\ndisplay({'k': 1})\nprint('b')\nclass H:\n    def _repr_html_(self): return '<i>h</i>'\nH()", agent.CellSpec{})
		if r.res.Status != "ok" || r.stdout != "a\nb\n" || len(r.displays) != 1 || r.displays[0]["text/plain"] != "{'k': 1}" || len(r.results) != 1 {
			t.Errorf("displays: %+v %+v", r, r.res)
		}
		// Large outputs arrive whole; a display beyond the bound on a
		// message is dropped with a note.
		r = runCell(t, ctx, c, "a", "class Big:\n    def __init__(self, n): self.n = n\n    def _repr_html_(self): return 'h' * self.n\ndisplay(Big(2 << 20))\nprint('x' * (3 << 20))\ndisplay(Big(9 << 20))\nprint('end')", agent.CellSpec{})
		if r.res.Status != "ok" || len(r.displays) != 1 || len(r.displays[0]["text/html"]) != 2<<20 || len(r.stdout) != 3<<20+5 || !strings.HasSuffix(r.stdout, "end\n") || !strings.Contains(r.stderr, "dropped") {
			t.Errorf("large outputs: %d displays, %d bytes of stdout, stderr %q, %+v", len(r.displays), len(r.stdout), r.stderr, r.res)
		}
		if _, err := os.Stat("/usr/lib/python3/dist-packages/matplotlib"); err == nil {
			r = runCell(t, ctx, c, "a", "import matplotlib.pyplot as plt\nplt.figure(figsize=(4, 3))\nplt.plot([1, 2], [3, 4])\nplt.show()", agent.CellSpec{TimeoutMS: 30000})
			if r.res.Status != "ok" || len(r.displays) != 1 || !strings.HasPrefix(r.displays[0]["image/png"], "iVBORw0KGgo") || r.displays[0]["text/plain"] != "<Figure size 400x300 with 1 Axes>" {
				t.Errorf("a chart: %+v, stderr %q", r.res, r.stderr)
			}
		}
		r = runCell(t, ctx, c, "a", "n = sum(range(3 * 10**7))", agent.CellSpec{})
		if r.res.CPUNS < int64(50*time.Millisecond) || r.res.WallNS < r.res.CPUNS/2 || r.res.PeakMemory < 5<<20 {
			t.Errorf("stats of a busy cell: %+v", r.res)
		}
		runCell(t, ctx, c, "a", "import threading, time\nthreading.Thread(target=lambda: (time.sleep(0.2), print('late'), subprocess.run(['echo', 'late child']))).start()", agent.CellSpec{})
		time.Sleep(600 * time.Millisecond)
		r = runCell(t, ctx, c, "a", "print('now')", agent.CellSpec{})
		// The thread's print and its child's echo come through different
		// pipes, so either may be first.
		if r.stdout != "late\nlate child\nnow\n" && r.stdout != "late child\nlate\nnow\n" {
			t.Errorf("output between cells, then the cell's: %q", r.stdout)
		}
	})

	t.Run("interrupt", func(t *testing.T) {
		runCell(t, ctx, c, "a", "kept = 'yes'", agent.CellSpec{})
		// Interrupting an idle context does nothing.
		if err := c.InterruptContext(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		cell, err := c.RunCell(ctx, "a", &agent.CellSpec{Code: "import time\nprint('start', flush=True)\ntime.sleep(60)", Filename: "<cell>"})
		if err != nil {
			t.Fatal(err)
		}
		defer cell.Close()
		if ev, err := cell.Next(); err != nil || ev.Type != "stdout" {
			t.Fatalf("first event %+v, %v", ev, err)
		}
		_, err = c.RunCell(ctx, "a", &agent.CellSpec{Code: "1"})
		wantError(t, "a second cell at once", err, cove.CodeConflict)
		start := time.Now()
		if err := c.InterruptContext(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		r := collectCell(t, cell)
		if r.res.Status != "interrupted" || r.res.Restarted || len(r.exceptions) != 1 || r.exceptions[0].Name != "KeyboardInterrupt" || r.exceptions[0].Line != 3 {
			t.Errorf("interrupted cell: %+v %+v", r, r.res)
		}
		if took := time.Since(start); took > time.Second {
			t.Errorf("the interrupt took %v", took)
		}
		if got := value(t, ctx, c, "a", "kept"); got != "'yes'" {
			t.Errorf("after the interrupt kept = %s", got)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		runCell(t, ctx, c, "b", "state = 1", agent.CellSpec{})
		// A cell that stops at the interrupt keeps the state.
		r := runCell(t, ctx, c, "b", "import time\ntime.sleep(30)", agent.CellSpec{TimeoutMS: 300})
		if r.res.Status != "interrupted" || !r.res.TimedOut || r.res.Restarted {
			t.Errorf("a cell past its timeout: %+v", r.res)
		}
		if got := value(t, ctx, c, "b", "state"); got != "1" {
			t.Errorf("state = %s", got)
		}
		// One that ignores it is killed and its interpreter replaced.
		start := time.Now()
		r = runCell(t, ctx, c, "b", "import time\nwhile True:\n    try:\n        time.sleep(30)\n    except KeyboardInterrupt:\n        pass", agent.CellSpec{TimeoutMS: 300})
		if r.res.Status != "died" || !r.res.TimedOut || !r.res.Restarted || r.res.Signal != 9 {
			t.Errorf("a cell that ignores the interrupt: %+v", r.res)
		}
		if took := time.Since(start); took < 1200*time.Millisecond || took > 5*time.Second {
			t.Errorf("the timeout took %v, want the timeout and a second's grace", took)
		}
		if got := value(t, ctx, c, "b", "'state' in dir()"); got != "False" {
			t.Errorf("state survived the restart: %s", got)
		}
	})

	t.Run("death", func(t *testing.T) {
		runCell(t, ctx, c, "b", "gone = 1", agent.CellSpec{})
		r := runCell(t, ctx, c, "b", "import os\nprint('bye', flush=True)\nos._exit(3)", agent.CellSpec{})
		if r.res.Status != "died" || r.res.ExitCode != 3 || !r.res.Restarted || r.stdout != "bye\n" {
			t.Errorf("os._exit(3): %+v %+v", r, r.res)
		}
		if got := value(t, ctx, c, "b", "'gone' in dir()"); got != "False" {
			t.Errorf("state survived the death: %s", got)
		}
		// An interpreter that dies between cells is replaced at the next.
		runCell(t, ctx, c, "b", "import os, threading, time\nthreading.Thread(target=lambda: (time.sleep(0.2), os._exit(5))).start()", agent.CellSpec{})
		time.Sleep(500 * time.Millisecond)
		r = runCell(t, ctx, c, "b", "'os' in dir()", agent.CellSpec{})
		if r.res.Status != "ok" || !r.res.Restarted || len(r.results) != 1 || r.results[0] != "False" {
			t.Errorf("after a death between cells: %+v %+v", r, r.res)
		}
	})

	t.Run("output limit", func(t *testing.T) {
		r := runCell(t, ctx, c, "a", "while True:\n    print('y' * 1000)", agent.CellSpec{OutputLimit: 100000, TimeoutMS: 20000})
		if !r.res.OutputLimited || !r.res.StdoutTruncated || r.res.StderrTruncated || len(r.stdout) != 100000 || r.res.Status != "interrupted" {
			t.Errorf("output limit: %d bytes, %+v", len(r.stdout), r.res)
		}
		if got := value(t, ctx, c, "a", "kept"); got != "'yes'" {
			t.Errorf("after the output limit kept = %s", got)
		}
	})

	t.Run("close before done", func(t *testing.T) {
		cell, err := c.RunCell(ctx, "a", &agent.CellSpec{Code: "import time\nprint('go', flush=True)\ntime.sleep(60)", Filename: "<cell>"})
		if err != nil {
			t.Fatal(err)
		}
		if ev, err := cell.Next(); err != nil || ev.Type != "stdout" {
			t.Fatalf("first event %+v, %v", ev, err)
		}
		start := time.Now()
		cell.Close()
		if took := time.Since(start); took > time.Second {
			t.Errorf("Close took %v", took)
		}
		// The cell has ended: the context takes the next one at once.
		if got := value(t, ctx, c, "a", "kept"); got != "'yes'" {
			t.Errorf("after Close kept = %s", got)
		}
		// A cancelled context does the same.
		cctx, cancel := context.WithCancel(ctx)
		cell, err = c.RunCell(cctx, "a", &agent.CellSpec{Code: "import time\ntime.sleep(60)", Filename: "<cell>"})
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		if _, err := cell.Next(); err != context.Canceled {
			t.Errorf("Next after cancel: %v", err)
		}
		cell.Close()
		deadline := time.Now().Add(3 * time.Second)
		for {
			r, err := c.RunCell(ctx, "a", &agent.CellSpec{Code: "kept", Filename: "<cell>"})
			if err == nil {
				if got := collectCell(t, r); got.res.Status != "ok" || got.results[0] != "'yes'" {
					t.Errorf("after a cancelled cell: %+v", got.res)
				}
				r.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the context is still busy after a cancelled cell: %v", err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	})

	t.Run("concurrent", func(t *testing.T) {
		startPython(t, ctx, c, "c")
		var wg sync.WaitGroup
		start := time.Now()
		for _, id := range []string{"a", "b", "c"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := runCell(t, ctx, c, id, fmt.Sprintf("import time\ntime.sleep(0.5)\nme = %q\nme", id), agent.CellSpec{TimeoutMS: 20000})
				if r.res.Status != "ok" || len(r.results) != 1 || r.results[0] != fmt.Sprintf("'%s'", id) {
					t.Errorf("cell in %s: %+v %+v", id, r, r.res)
				}
			}()
		}
		wg.Wait()
		if took := time.Since(start); took > 1400*time.Millisecond {
			t.Errorf("three half-second cells in three contexts took %v: they did not run at once", took)
		}
	})

	t.Run("restart and stop", func(t *testing.T) {
		runCell(t, ctx, c, "c", "z = 1", agent.CellSpec{})
		if err := c.RestartContext(ctx, "c"); err != nil {
			t.Fatal(err)
		}
		if got := value(t, ctx, c, "c", "'z' in dir()"); got != "False" {
			t.Errorf("state survived a restart: %s", got)
		}
		st, err := c.Stats(ctx)
		if err != nil || st.Contexts != 3 {
			t.Errorf("stats: %+v, %v", st, err)
		}
		if err := c.StopContext(ctx, "c"); err != nil {
			t.Fatal(err)
		}
		_, err = c.RunCell(ctx, "c", &agent.CellSpec{Code: "1"})
		wantError(t, "a cell in a stopped context", err, cove.CodeNotFound)
		if st, err := c.Stats(ctx); err != nil || st.Contexts != 2 {
			t.Errorf("stats after a stop: %+v, %v", st, err)
		}
		// Its interpreter is gone; the id is free again.
		if out := sh(t, ctx, c, "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done | grep -c '^/usr/bin/python3 -u' || true"); out != "2\n" {
			t.Errorf("interpreters running: %q", out)
		}
		startPython(t, ctx, c, "c")
	})

	t.Run("stop or restart during a cell", func(t *testing.T) {
		for _, op := range []string{"restart", "stop"} {
			startPython(t, ctx, c, "d")
			cell, err := c.RunCell(ctx, "d", &agent.CellSpec{Code: "import time\nprint('go', flush=True)\ntime.sleep(60)", Filename: "<cell>"})
			if err != nil {
				t.Fatal(err)
			}
			if ev, err := cell.Next(); err != nil || ev.Type != "stdout" {
				t.Fatalf("first event %+v, %v", ev, err)
			}
			if op == "restart" {
				err = c.RestartContext(ctx, "d")
			} else {
				err = c.StopContext(ctx, "d")
			}
			if err != nil {
				t.Fatal(err)
			}
			r := collectCell(t, cell)
			cell.Close()
			if r.res.Status != "died" || r.res.Signal != 9 || r.res.OOMKilled || r.res.Restarted != (op == "restart") {
				t.Errorf("a cell during a %s: %+v", op, r.res)
			}
			if op == "restart" {
				if got := value(t, ctx, c, "d", "'time' in dir()"); got != "False" {
					t.Errorf("after the restart: %s", got)
				}
				if err := c.StopContext(ctx, "d"); err != nil {
					t.Fatal(err)
				}
			}
		}
	})

	t.Run("limit of contexts", func(t *testing.T) {
		// a, b and c run: fill up to the bound, then one more.
		var ids []string
		var err error
		for i := 0; i < 40 && err == nil; i++ {
			id := fmt.Sprintf("many%d", i)
			err = c.StartContext(ctx, &agent.ContextSpec{ID: id, Language: "python", Env: pyEnv, Dir: "/workspace"})
			if err == nil {
				ids = append(ids, id)
			}
		}
		wantError(t, "one context too many", err, cove.CodeConflict)
		if len(ids) != 29 {
			t.Errorf("started %d more contexts beside 3, want 29", len(ids))
		}
		for _, id := range ids {
			if err := c.StopContext(ctx, id); err != nil {
				t.Error(err)
			}
		}
	})
}

// TestContextOutOfMemory runs a cell that allocates more than the
// sandbox's memory: the interpreter is killed and replaced.
func TestContextOutOfMemory(t *testing.T) {
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("/usr/bin/python3 is not installed")
	}
	limits := cove.DefaultLimits()
	limits.MemoryBytes = 128 << 20
	c, ctx := newSandbox(t, "ctxoom", limits)
	startPython(t, ctx, c, "m")
	runCell(t, ctx, c, "m", "small = bytearray(10 << 20)", agent.CellSpec{})
	r := runCell(t, ctx, c, "m", "big = bytearray(1 << 30)", agent.CellSpec{TimeoutMS: 30000})
	if r.res.Status != "died" || !r.res.OOMKilled || !r.res.Restarted {
		t.Errorf("a cell past the memory limit: %+v %+v", r, r.res)
	}
	if got := value(t, ctx, c, "m", "'small' in dir()"); got != "False" {
		t.Errorf("state survived the OOM kill: %s", got)
	}
	r = runCell(t, ctx, c, "m", "b = bytearray(50 << 20)\nlen(b)", agent.CellSpec{})
	if r.res.Status != "ok" || r.res.PeakMemory < 50<<20 || r.res.PeakMemory > 128<<20 {
		t.Errorf("a 50 MiB cell: %+v", r.res)
	}
}

// TestCancelBeforeTheCellStarts cancels a cell that the driver has not yet
// begun (it is still reading a large request): the driver drops a SIGINT
// that comes before a cell runs, so the agent says it again, and the
// context keeps its state instead of losing its interpreter a second later.
func TestCancelBeforeTheCellStarts(t *testing.T) {
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("/usr/bin/python3 is not installed")
	}
	c, ctx := newSandbox(t, "cancel", cove.DefaultLimits())
	startPython(t, ctx, c, "a")
	if got := value(t, ctx, c, "a", "kept = 'yes'; kept"); got != "'yes'" {
		t.Fatalf("kept = %s", got)
	}
	// Some megabytes of request keep the driver busy before the cell.
	big := "#" + strings.Repeat("\\u00e9", 1<<20) + "\nimport time\ntime.sleep(60)"
	cctx, cancel := context.WithCancel(ctx)
	cell, err := c.RunCell(cctx, "a", &agent.CellSpec{Code: big, Filename: "<cell>"})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	cell.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r, err := c.RunCell(ctx, "a", &agent.CellSpec{Code: "kept", Filename: "<cell>"})
		if err == nil {
			got := collectCell(t, r)
			r.Close()
			if got.res.Status != "ok" || len(got.results) != 1 || got.results[0] != "'yes'" {
				t.Fatalf("after the cancelled cell: %+v %+v (the context lost its state)", got.res, got.exceptions)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the context is still busy after a cancelled cell: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestIdleContextKilledForMemory: a sandbox's contexts share its memory,
// and the kernel's OOM killer takes the largest process, which may be an
// idle context's interpreter while another context's cell allocates. The
// idle context's next cell runs in a fresh interpreter, and both its
// stderr (first) and its result say that the state is lost, and why.
func TestIdleContextKilledForMemory(t *testing.T) {
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("/usr/bin/python3 is not installed")
	}
	limits := cove.DefaultLimits()
	limits.MemoryBytes = 160 << 20
	c, ctx := newSandbox(t, "idleoom", limits)
	startPython(t, ctx, c, "c1")
	startPython(t, ctx, c, "c2")
	runCell(t, ctx, c, "c1", "v = 'c1'", agent.CellSpec{})
	if r := runCell(t, ctx, c, "c2", "big = bytearray(90 << 20)\nv = 'c2'", agent.CellSpec{TimeoutMS: 30000}); r.res.Status != "ok" {
		t.Fatalf("c2's big cell: %+v, stderr %q", r.res, r.stderr)
	}
	// c2 holds more than c1 ever gets to before the limit: c2 goes.
	if r := runCell(t, ctx, c, "c1", "big2 = bytearray(90 << 20)\nv", agent.CellSpec{TimeoutMS: 30000}); r.res.Status != "ok" || r.res.Restarted {
		t.Fatalf("c1's big cell: %+v, stderr %q", r.res, r.stderr)
	}
	r := runCell(t, ctx, c, "c2", "print('out')\nv", agent.CellSpec{})
	if r.res.Status != "error" || len(r.exceptions) != 1 || r.exceptions[0].Name != "NameError" {
		t.Errorf("c2 after its interpreter was killed: %+v %+v", r.res, r.exceptions)
	}
	if !r.res.Restarted || !strings.Contains(r.res.EndedIdle, "lack of memory") {
		t.Errorf("the result does not say that the interpreter was killed for memory while idle: %+v", r.res)
	}
	if want := "cove: " + agent.EndedIdleNote(r.res.EndedIdle) + "\n"; r.stderr != want || r.stdout != "out\n" {
		t.Errorf("stderr %q, stdout %q: want the note %q, then the cell's output", r.stderr, r.stdout, want)
	}
	// The next cell is an ordinary one.
	if r := runCell(t, ctx, c, "c2", "v = 2", agent.CellSpec{}); r.res.Restarted || r.res.EndedIdle != "" || r.stderr != "" {
		t.Errorf("the cell after: %+v, stderr %q", r.res, r.stderr)
	}
}

// TestRestartDuringACell: a restart kills the running cell, whose result
// says that a restart was asked for, and returns once the context takes
// the next cell: one sent at once is not refused as the killed one's
// result is still on its way.
func TestRestartDuringACell(t *testing.T) {
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("/usr/bin/python3 is not installed")
	}
	c, ctx := newSandbox(t, "restartcell", cove.DefaultLimits())
	startPython(t, ctx, c, "r")
	for i := 0; i < 6; i++ {
		cell, err := c.RunCell(ctx, "r", &agent.CellSpec{Code: "import time\nprint('go', flush=True)\ntime.sleep(60)", Filename: "<cell>", TimeoutMS: 60000})
		if err != nil {
			t.Fatal(err)
		}
		if ev, err := cell.Next(); err != nil || ev.Type != "stdout" {
			t.Fatalf("first event %+v, %v", ev, err)
		}
		if err := c.RestartContext(ctx, "r"); err != nil {
			t.Fatal(err)
		}
		// The killed cell's stream is not read yet.
		next, err := c.RunCell(ctx, "r", &agent.CellSpec{Code: "'time' in dir()", Filename: "<cell>"})
		if err != nil {
			t.Fatalf("round %d: a cell right after the restart: %v", i, err)
		}
		if r := collectCell(t, next); r.res.Status != "ok" || len(r.results) != 1 || r.results[0] != "False" || r.res.Restarted {
			t.Errorf("the cell after the restart: %+v %+v", r.res, r.results)
		}
		next.Close()
		r := collectCell(t, cell)
		cell.Close()
		if r.res.Status != "died" || !r.res.RestartRequested || !r.res.Restarted || r.res.OOMKilled {
			t.Errorf("the cell killed by the restart: %+v", r.res)
		}
	}
}

// TestContextCommandLine: an interpreter's command line is short (the
// driver comes on its standard input), so that ps shows what it is
// rather than tens of kilobytes of driver.
func TestContextCommandLine(t *testing.T) {
	var langs []string
	for _, l := range []struct{ lang, bin string }{{"python", "/usr/bin/python3"}, {"javascript", "/usr/bin/node"}} {
		if _, err := os.Stat(l.bin); err == nil {
			langs = append(langs, l.lang)
		}
	}
	if len(langs) == 0 {
		t.Skip("neither python3 nor node is installed")
	}
	c, ctx := newSandbox(t, "cmdline", cove.DefaultLimits())
	for _, l := range langs {
		if err := c.StartContext(ctx, &agent.ContextSpec{ID: l, Language: l, Env: pyEnv, Dir: "/workspace"}); err != nil {
			t.Fatal(err)
		}
	}
	out := sh(t, ctx, c, "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline; echo; done | grep '^/usr/bin/.* cove-context'")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(langs) {
		t.Fatalf("the interpreters' command lines: %q", out)
	}
	for _, l := range lines {
		if len(l) > 100 {
			t.Errorf("a command line of %d bytes: %.200q", len(l), l)
		}
	}
}
