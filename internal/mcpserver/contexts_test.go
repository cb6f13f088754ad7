package mcpserver

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cove-sandbox/cove"
)

// TestRunInContext runs cells the way an agent does: state persists
// between calls, charts come back as images, exceptions as errors.
func TestRunInContext(t *testing.T) {
	svc := newService(t)
	c := connect(t, New(svc, Options{}))
	ctx := context.Background()

	var out cellOutput
	c.ok("run_in_context", map[string]any{"code": "import math\nx = 21\nprint('set')"}, &out)
	if out.Verdict != "ok" || out.Stdout != "set\n" || !out.NewContext || out.SandboxID == "" || out.ContextID == "" || out.Language != "python" {
		t.Fatalf("first cell: %+v", out)
	}
	first := out
	res := c.ok("run_in_context", map[string]any{"code": "x * 2"}, &out)
	if out.Result != "42" || out.NewContext || out.ContextID != first.ContextID || out.SandboxID != first.SandboxID {
		t.Fatalf("second cell: %+v", out)
	}
	if !strings.Contains(text(res), "result: 42") {
		t.Errorf("second cell text: %s", text(res))
	}

	// A chart is an image.
	res = c.ok("run_in_context", map[string]any{"code": "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [1, 4, 9])\nplt.show()"}, &out)
	imgs := images(res)
	if len(imgs) != 1 || imgs[0].MIMEType != "image/png" || !bytes.HasPrefix(imgs[0].Data, []byte("\x89PNG\r\n\x1a\n")) || out.Images != 1 {
		t.Errorf("chart: %d images, %+v", len(imgs), out)
	}

	// An exception is a result, as a failing program of run_code is,
	// with its traceback and verdict error, and the context lives on.
	res = c.ok("run_in_context", map[string]any{"code": "y = 1\n1 / 0"}, &out)
	if out.Verdict != "error" || out.Exception == nil || out.Exception.Name != "ZeroDivisionError" ||
		!strings.Contains(text(res), "ZeroDivisionError") || !strings.Contains(text(res), "line 2") || !strings.Contains(text(res), "verdict: error") {
		t.Errorf("exception: %+v\n%s", out, text(res))
	}
	c.ok("run_in_context", map[string]any{"code": "x + y"}, &out)
	if out.Result != "22" {
		t.Errorf("after the exception: %+v", out)
	}

	// Another language gets its own context in the same sandbox.
	c.ok("run_in_context", map[string]any{"language": "javascript", "code": "let n = 5; n * 3"}, &out)
	if out.Result != "15" || !out.NewContext || out.SandboxID != first.SandboxID || out.ContextID == first.ContextID {
		t.Errorf("javascript: %+v", out)
	}
	// A context named by id.
	c.ok("run_in_context", map[string]any{"context_id": first.ContextID, "code": "math.sqrt(x * 4 + 16)"}, &out)
	if out.Result != "10.0" {
		t.Errorf("by context id: %+v", out)
	}
	// ... in its own language: a cell given for another is refused, not
	// run there as Python.
	c.fails("run_in_context", map[string]any{"context_id": first.ContextID, "language": "js", "code": "x"}, "runs python, not javascript")
	c.ok("run_in_context", map[string]any{"context_id": first.ContextID, "language": "py", "code": "x"}, &out)
	// A context in a sandbox the agent made.
	var sb sandboxOutput
	c.ok("create_sandbox", map[string]any{}, &sb)
	c.ok("write_file", map[string]any{"sandbox_id": sb.SandboxID, "path": "n.txt", "content": "7"}, nil)
	c.ok("run_in_context", map[string]any{"sandbox_id": sb.SandboxID, "code": "int(open('n.txt').read()) * 6"}, &out)
	if out.Result != "42" || out.SandboxID != sb.SandboxID {
		t.Errorf("in a given sandbox: %+v", out)
	}

	// The session's context sandbox goes with the session.
	c.close()
	if !gone(t, svc, ctx, first.SandboxID) {
		t.Errorf("the session's context sandbox is still there")
	}
	if _, err := svc.GetSandbox(ctx, first.SandboxID); cove.ErrorCode(err) != cove.CodeNotFound {
		t.Errorf("context sandbox: %v", err)
	}
}

// TestCellResultImage checks that a cell whose value is an image (a
// matplotlib Figure on its last line) returns that image, as the REST
// API's result bundle does.
func TestCellResultImage(t *testing.T) {
	svc := newService(t)
	c := connect(t, New(svc, Options{}))
	var out cellOutput
	// The figure is closed, so that only the cell's value can show it.
	res := c.ok("run_in_context", map[string]any{"code": "import matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.plot([1, 2, 3])\nplt.close(fig)\nfig"}, &out)
	imgs := images(res)
	if len(imgs) != 1 || imgs[0].MIMEType != "image/png" || !bytes.HasPrefix(imgs[0].Data, []byte("\x89PNG\r\n\x1a\n")) || out.Images != 1 {
		t.Fatalf("figure value: %d images, %+v", len(imgs), out)
	}
	if !strings.Contains(out.Result, "Figure") || !strings.Contains(text(res), "(image attached)") {
		t.Errorf("figure value text: %+v\n%s", out, text(res))
	}
}

// TestSessionsDeleteTheirContexts checks that a session deletes, when it
// ends, the contexts it made in a sandbox it did not create, and no
// other context there.
func TestSessionsDeleteTheirContexts(t *testing.T) {
	svc := newService(t)
	srv := New(svc, Options{})
	ctx := context.Background()
	sb, err := svc.CreateSandbox(ctx, cove.SandboxSpec{})
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := svc.CreateContext(ctx, sb.ID, cove.ContextSpec{Language: "python"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		c := connect(t, srv)
		var out cellOutput
		c.ok("run_in_context", map[string]any{"sandbox_id": sb.ID, "code": fmt.Sprint(i)}, &out)
		c.ok("run_in_context", map[string]any{"sandbox_id": sb.ID, "language": "javascript", "code": "1"}, nil)
		// A context named by id is used, not made, by the session.
		c.ok("run_in_context", map[string]any{"sandbox_id": sb.ID, "context_id": theirs.ID, "code": "1"}, nil)
		c.close()
		cs, err := svc.ListContexts(ctx, sb.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) != 1 || cs[0].ID != theirs.ID {
			var ids []string
			for _, x := range cs {
				ids = append(ids, x.ID+" "+x.Language)
			}
			t.Fatalf("after session %d the sandbox has contexts %v, want only %s", i, ids, theirs.ID)
		}
	}
}

// TestCellLimits checks how a cell stopped by its time limit reads to a
// model: a result (not a failed call) with its verdict, a hint that says
// the context kept its state, and the state is indeed kept; after a cell
// that ran out of memory, the hint says the state is lost and what to do.
func TestCellLimits(t *testing.T) {
	svc := newService(t)
	c := connect(t, New(svc, Options{}))
	var out cellOutput
	c.ok("run_in_context", map[string]any{"code": "x = 41"}, &out)
	res := c.ok("run_in_context", map[string]any{"code": "import time\ntime.sleep(30)", "timeout_seconds": 0.5}, &out)
	if out.Verdict != "timeout" || strings.Contains(out.Message, "restarted") {
		t.Fatalf("timeout: %+v", out)
	}
	if !strings.Contains(text(res), "verdict: timeout") || !strings.Contains(text(res), "hint: the cell ran past its time limit; the context kept its variables and imports;") {
		t.Errorf("timeout text: %s", text(res))
	}
	c.ok("run_in_context", map[string]any{"code": "x + 1"}, &out)
	if out.Result != "42" {
		t.Errorf("after the timeout: %+v", out)
	}

	var sb sandboxOutput
	c.ok("create_sandbox", map[string]any{"memory_mb": 128}, &sb)
	c.ok("run_in_context", map[string]any{"sandbox_id": sb.SandboxID, "code": "y = 1"}, &out)
	res = c.ok("run_in_context", map[string]any{"sandbox_id": sb.SandboxID, "code": "b = bytearray(1 << 30)"}, &out)
	if out.Verdict != "oom_killed" || !strings.Contains(out.Message, "restarted") {
		t.Fatalf("out of memory: %+v", out)
	}
	if !strings.Contains(out.Hint, "lost its state: re-run the cells that defined what you need") || strings.Contains(out.Hint, "keeps its variables") || !strings.Contains(text(res), "hint: "+out.Hint) {
		t.Errorf("out of memory hint: %q", out.Hint)
	}
}

// TestBusyContext checks what a cell sent to a context busy with another
// call's cell reads: a conflict whose hint says that a context runs one
// cell at a time, how to interrupt the running one (cancelling its call,
// which does interrupt it) and where to work in parallel.
func TestBusyContext(t *testing.T) {
	svc := newService(t)
	c := connect(t, New(svc, Options{}))
	var out cellOutput
	c.ok("run_in_context", map[string]any{"code": "x = 41"}, &out)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := make(chan error, 1)
	go func() {
		_, err := c.cs.CallTool(ctx, &mcp.CallToolParams{Name: "run_in_context", Arguments: map[string]any{"code": "import time\ntime.sleep(100)", "timeout_seconds": 100}})
		first <- err
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		cx, err := svc.GetContext(context.Background(), out.SandboxID, out.ContextID)
		if err != nil || cx.Busy {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the first cell did not start")
		}
		time.Sleep(20 * time.Millisecond)
	}
	msg := c.fails("run_in_context", map[string]any{"code": "x"}, "error (conflict): a cell is already running in context "+out.ContextID)
	for _, want := range []string{"hint: a context runs one cell at a time", "cancel that call (notifications/cancelled)", "use run_code"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the conflict lacks %q: %s", want, msg)
		}
	}

	// Cancelling the first call interrupts its cell: the context takes
	// the next, with its state, once the server has read the client's
	// notification (which the client does not wait for).
	start := time.Now()
	cancel()
	<-first
	for {
		_, err := c.try("run_in_context", map[string]any{"code": "x + 1"}, &out)
		if err == nil || !strings.Contains(err.Error(), "already running") || time.Since(start) > 10*time.Second {
			if err != nil || out.Result != "42" {
				t.Errorf("after cancelling the running cell: %+v %v after %v", out, err, time.Since(start))
			}
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
}
