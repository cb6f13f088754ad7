package mcpserver

import (
	"bytes"
	"context"
	"strings"
	"testing"

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

	// An exception is a tool error with its traceback, and the context
	// lives on.
	res = c.call("run_in_context", map[string]any{"code": "y = 1\n1 / 0"})
	if !res.IsError || !strings.Contains(text(res), "ZeroDivisionError") || !strings.Contains(text(res), "line 2") {
		t.Errorf("exception: %v %s", res.IsError, text(res))
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
