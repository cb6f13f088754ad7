package mcpserver

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/client"
	"github.com/cove-sandbox/cove/internal/lang"
)

// TestRunCode runs programs in fresh sandboxes through the tool, as an
// agent does.
func TestRunCode(t *testing.T) {
	svc := newService(t)
	c := connect(t, New(svc, Options{}))

	var out execOutput
	res := c.ok("run_code", map[string]any{
		"language": "python",
		"code":     "import sys\nprint(open('data.txt').read().strip() * 2)\nprint(sys.argv[1:], sys.stdin.read())\nprint('warn', file=sys.stderr)",
		"files":    map[string]any{"data.txt": "ab\n"},
		"args":     []string{"x", "y"},
		"stdin":    "in",
	}, &out)
	if out.Verdict != "ok" || out.Stdout != "abab\n['x', 'y'] in\n" || out.Stderr != "warn\n" || out.SandboxID != "" {
		t.Fatalf("structured: %+v", out)
	}
	for _, want := range []string{"ok (exit code 0)", "--- stdout\nabab\n", "--- stderr\nwarn\n"} {
		if !strings.Contains(text(res), want) {
			t.Errorf("text %q lacks %q", text(res), want)
		}
	}

	// A failing program is a result with its exit code, not a tool error.
	res = c.ok("run_code", map[string]any{"language": "javascript", "code": "console.error('boom'); process.exit(3)"}, &out)
	if out.Verdict != "exit_nonzero" || out.ExitCode != 3 || !strings.Contains(text(res), "exit code 3") || !strings.Contains(text(res), "boom") {
		t.Fatalf("failing program: %+v\n%s", out, text(res))
	}

	// TypeScript and bash run too.
	c.ok("run_code", map[string]any{"language": "typescript", "code": "const n: number = 6 * 7; console.log(n)"}, &out)
	if out.Stdout != "42\n" {
		t.Errorf("typescript: %+v", out)
	}
	c.ok("run_code", map[string]any{"language": "bash", "code": "echo $((6*7))"}, &out)
	if out.Stdout != "42\n" {
		t.Errorf("bash: %+v", out)
	}

	// Nothing was left behind: ephemeral sandboxes are gone.
	l, err := svc.ListSandboxes(context.Background(), cove.ListOptions{})
	if err != nil || len(l.Sandboxes) != 0 {
		t.Errorf("sandboxes left: %+v %v", l, err)
	}
}

// TestRunCodeLimits checks that a program stopped by a limit comes back
// with its verdict and a hint saying what to change.
func TestRunCodeLimits(t *testing.T) {
	svc := newService(t)
	c := connect(t, New(svc, Options{MaxOutputChars: 1000}))
	var out execOutput

	res := c.ok("run_code", map[string]any{
		"language": "python", "memory_mb": 32,
		"code": "x = bytearray(200 * 1024 * 1024)\nprint(len(x))",
	}, &out)
	if out.Verdict != "oom_killed" || !strings.Contains(out.Hint, "more than 32 MiB") || !strings.Contains(out.Hint, "pass a larger memory_mb") {
		t.Errorf("memory: %+v", out)
	}
	if !strings.Contains(text(res), "hint: the program was killed for using more than 32 MiB of memory; pass a larger memory_mb") {
		t.Errorf("memory text: %s", text(res))
	}

	c.ok("run_code", map[string]any{"language": "bash", "timeout_seconds": 0.5, "code": "sleep 10"}, &out)
	if out.Verdict != "timeout" || !strings.Contains(out.Hint, "timeout_seconds") {
		t.Errorf("timeout: %+v", out)
	}

	// Long output is cut in the middle for the model, and says so.
	res = c.ok("run_code", map[string]any{"language": "python", "code": "print('begin' + 'x' * 5000 + 'end')"}, &out)
	if !out.OutputCut || !strings.HasPrefix(out.Stdout, "beginx") || !strings.HasSuffix(out.Stdout, "xend\n") || len(out.Stdout) > 1300 {
		t.Errorf("long output: cut %v, %d bytes", out.OutputCut, len(out.Stdout))
	}
	if !strings.Contains(text(res), "bytes cut here") {
		t.Errorf("long output text: %s", text(res))
	}
}

// TestSandboxWorkflow drives a sandbox through every tool that works in
// one: files, commands, code, processes, listing, deletion.
func TestSandboxWorkflow(t *testing.T) {
	svc := newService(t)
	c := connect(t, New(svc, Options{}))
	ctx := context.Background()

	var sb sandboxOutput
	res := c.ok("create_sandbox", map[string]any{"language": "python", "memory_mb": 256, "labels": map[string]string{"task": "demo"}}, &sb)
	if sb.SandboxID == "" || sb.State != "running" || sb.MemoryBytes != 256<<20 || sb.Session != "deleted when this session ends" {
		t.Fatalf("create: %+v", sb)
	}
	if !strings.Contains(text(res), sb.SandboxID) || !strings.Contains(text(res), "256 MiB") {
		t.Errorf("create text: %s", text(res))
	}
	id := sb.SandboxID

	var fi fileInfoOutput
	c.ok("write_file", map[string]any{"sandbox_id": id, "path": "src/app.py", "content": "def f():\n    return 'hello from app'\n"}, &fi)
	if fi.Path != "src/app.py" || fi.Size != 37 {
		t.Errorf("write: %+v", fi)
	}
	c.ok("write_file", map[string]any{"sandbox_id": id, "path": "run.sh", "content": "#!/bin/sh\necho script ran\n", "executable": true}, nil)

	var out execOutput
	c.ok("exec_command", map[string]any{"sandbox_id": id, "command": "./run.sh && cat src/app.py | wc -l && pwd"}, &out)
	if out.Verdict != "ok" || out.Stdout != "script ran\n2\n/workspace\n" || out.SandboxID != id {
		t.Errorf("exec: %+v", out)
	}
	c.ok("run_code", map[string]any{"sandbox_id": id, "language": "python", "code": "import sys; sys.path.insert(0, 'src')\nimport app\nprint(app.f())\nopen('out.txt', 'w').write('result')"}, &out)
	if out.Stdout != "hello from app\n" {
		t.Errorf("run_code in sandbox: %+v", out)
	}
	c.fails("run_code", map[string]any{"sandbox_id": id, "language": "python", "code": "1", "memory_mb": 512}, "memory_mb applies to a fresh sandbox")

	var rf readFileOutput
	c.ok("read_file", map[string]any{"sandbox_id": id, "path": "out.txt"}, &rf)
	if rf.Encoding != "text" || rf.Content != "result" || rf.Size != 6 {
		t.Errorf("read text: %+v", rf)
	}
	// A long file comes in parts.
	c.ok("write_file", map[string]any{"sandbox_id": id, "path": "long.txt", "content": strings.Repeat("0123456789", 30)}, nil)
	res = c.ok("read_file", map[string]any{"sandbox_id": id, "path": "long.txt", "max_bytes": 120}, &rf)
	if rf.NextOffset != 120 || len(rf.Content) != 120 || !strings.Contains(text(res), "offset 120") {
		t.Errorf("first part: %+v", rf)
	}
	c.ok("read_file", map[string]any{"sandbox_id": id, "path": "long.txt", "offset": 280, "max_bytes": 120}, &rf)
	if rf.NextOffset != 0 || rf.Content != "0123456789"+"0123456789" {
		t.Errorf("last part: %+v", rf)
	}
	// Images come back as images, other binary data as base64.
	img := image.NewRGBA(image.Rect(0, 0, 4, 4))
	img.Set(1, 1, color.RGBA{255, 0, 0, 255})
	var pngData bytes.Buffer
	png.Encode(&pngData, img)
	c.ok("write_file", map[string]any{"sandbox_id": id, "path": "plot.png", "content": base64.StdEncoding.EncodeToString(pngData.Bytes()), "base64": true}, nil)
	res = c.ok("read_file", map[string]any{"sandbox_id": id, "path": "plot.png"}, &rf)
	if imgs := images(res); len(imgs) != 1 || imgs[0].MIMEType != "image/png" || !bytes.Equal(imgs[0].Data, pngData.Bytes()) || rf.Encoding != "image" {
		t.Errorf("read image: %+v %+v", rf, res.Content)
	}
	c.ok("write_file", map[string]any{"sandbox_id": id, "path": "blob.bin", "content": base64.StdEncoding.EncodeToString([]byte{0, 1, 2, 255}), "base64": true}, nil)
	c.ok("read_file", map[string]any{"sandbox_id": id, "path": "blob.bin"}, &rf)
	if rf.Encoding != "base64" || rf.Content != "AAEC/w==" {
		t.Errorf("read binary: %+v", rf)
	}

	var lf listFilesOutput
	res = c.ok("list_files", map[string]any{"sandbox_id": id, "recursive": true}, &lf)
	var paths []string
	for _, e := range lf.Entries {
		paths = append(paths, e.Path)
	}
	for _, want := range []string{"src", "src/app.py", "out.txt", "plot.png"} {
		if !strings.Contains(" "+strings.Join(paths, " ")+" ", " "+want+" ") {
			t.Errorf("list: %v lacks %s", paths, want)
		}
	}
	if !strings.Contains(text(res), "src/\n") {
		t.Errorf("list text: %s", text(res))
	}
	c.ok("delete_file", map[string]any{"sandbox_id": id, "path": "src", "recursive": true}, nil)
	c.fails("delete_file", map[string]any{"sandbox_id": id, "path": "src", "recursive": true}, "not_found")
	c.fails("read_file", map[string]any{"sandbox_id": id, "path": "src/app.py"}, "not_found")

	// A background process: start, read its output, stop it.
	var p processOutput
	c.ok("start_process", map[string]any{"sandbox_id": id, "command": "echo started; sleep 0.3; echo later; sleep 600", "name": "server"}, &p)
	if p.PID == 0 || p.State != "running" {
		t.Fatalf("start_process: %+v", p)
	}
	var logs processLogsOutput
	c.ok("process_logs", map[string]any{"sandbox_id": id, "pid": p.PID, "wait_seconds": 1}, &logs)
	if logs.State != "running" || logs.Stdout != "started\nlater\n" {
		t.Errorf("logs while running: %+v", logs)
	}
	c.ok("process_logs", map[string]any{"sandbox_id": id, "pid": p.PID}, &logs)
	if logs.State != "running" || logs.Stdout != "started\nlater\n" || logs.Exit != nil {
		t.Errorf("logs without waiting: %+v", logs)
	}
	c.ok("kill_process", map[string]any{"sandbox_id": id, "pid": p.PID, "signal": "SIGKILL"}, nil)
	res = c.ok("process_logs", map[string]any{"sandbox_id": id, "pid": p.PID, "wait_seconds": 10}, &logs)
	if logs.State != "exited" || logs.Exit == nil || logs.Exit.Verdict != "killed" || !strings.Contains(text(res), "exited: killed by SIGKILL") {
		t.Errorf("logs after kill: %+v\n%s", logs, text(res))
	}
	c.ok("process_logs", map[string]any{"sandbox_id": id, "pid": p.PID}, &logs)
	if logs.State != "exited" || logs.Exit == nil || logs.Stdout != "started\nlater\n" {
		t.Errorf("logs of an exited process without waiting: %+v", logs)
	}

	var ls listSandboxesOutput
	c.ok("list_sandboxes", map[string]any{"labels": map[string]string{"task": "demo"}}, &ls)
	if len(ls.Sandboxes) != 1 || ls.Sandboxes[0].SandboxID != id || ls.Sandboxes[0].Session != "deleted when this session ends" {
		t.Errorf("list_sandboxes: %+v", ls)
	}

	// The sandbox's files are resources.
	rl, err := c.cs.ListResources(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var uri string
	for _, r := range rl.Resources {
		if r.Name == "out.txt" {
			uri = r.URI
		}
	}
	if want := "cove://sandboxes/" + id + "/files/out.txt"; uri != want {
		t.Fatalf("resources %+v lack %s", rl.Resources, want)
	}
	rr, err := c.cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: uri})
	if err != nil || len(rr.Contents) != 1 || rr.Contents[0].Text != "result" {
		t.Fatalf("read resource: %+v %v", rr, err)
	}
	rr, err = c.cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: fileURI(id, "plot.png")})
	if err != nil || !bytes.Equal(rr.Contents[0].Blob, pngData.Bytes()) || rr.Contents[0].MIMEType != "image/png" {
		t.Fatalf("read binary resource: %+v %v", rr, err)
	}
	if _, err := c.cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: fileURI(id, "nope.txt")}); err == nil {
		t.Error("reading a missing file as a resource succeeded")
	}

	c.ok("delete_sandbox", map[string]any{"sandbox_id": id}, nil)
	c.fails("exec_command", map[string]any{"sandbox_id": id, "command": "true"}, "error (not_found)")
	c.fails("delete_sandbox", map[string]any{"sandbox_id": id}, "not_found")
}

// TestSessionEnd checks that the sandboxes a session created go when it
// ends, except those it asked to keep.
func TestSessionEnd(t *testing.T) {
	svc := newService(t)
	srv := New(svc, Options{})
	c := connect(t, srv)
	ctx := context.Background()

	var temp, kept sandboxOutput
	c.ok("create_sandbox", map[string]any{}, &temp)
	c.ok("create_sandbox", map[string]any{"keep": true}, &kept)
	if kept.Session != "kept after this session" {
		t.Errorf("kept: %+v", kept)
	}
	var out execOutput
	res := c.ok("run_code", map[string]any{"language": "python", "code": "open('f', 'w').write('x'); print('ran')", "keep": true}, &out)
	if out.SandboxID == "" || out.Stdout != "ran\n" || !strings.Contains(text(res), "kept after this session") {
		t.Fatalf("run_code keep: %+v\n%s", out, text(res))
	}
	other, err := svc.CreateSandbox(ctx, cove.SandboxSpec{})
	if err != nil {
		t.Fatal(err)
	}
	// Working in a sandbox does not make the session its owner.
	c.ok("exec_command", map[string]any{"sandbox_id": other.ID, "command": "true"}, nil)

	c.close()
	if !gone(t, svc, ctx, temp.SandboxID) {
		t.Errorf("the session's sandbox %s is still there", temp.SandboxID)
	}
	for _, id := range []string{kept.SandboxID, out.SandboxID, other.ID} {
		if _, err := svc.GetSandbox(ctx, id); err != nil {
			t.Errorf("sandbox %s should stay: %v", id, err)
		}
	}
	if _, _, err := svc.ReadFile(ctx, out.SandboxID, "f"); err != nil {
		t.Errorf("the kept sandbox lost its file: %v", err)
	}
}

// TestCloseDeletesSessionSandboxes checks Close, which cove serve calls
// on shutdown, for sessions that are still open.
func TestCloseDeletesSessionSandboxes(t *testing.T) {
	svc := newService(t)
	srv := New(svc, Options{})
	c := connect(t, srv)
	var sb sandboxOutput
	c.ok("create_sandbox", map[string]any{}, &sb)
	if err := srv.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.GetSandbox(context.Background(), sb.SandboxID); cove.ErrorCode(err) != cove.CodeNotFound {
		t.Errorf("after Close: %v", err)
	}
	// A sandbox made after Close does not outlive the call.
	c.fails("create_sandbox", map[string]any{}, "session ended")
}

// TestParallelSandboxes makes calls at once, as an agent working in
// several sandboxes does: calls of one session run concurrently (a command
// waits for a file that a later call creates), and each sandbox keeps its
// own files.
func TestParallelSandboxes(t *testing.T) {
	svc := newService(t)
	c := connect(t, New(svc, Options{}))

	var wg sync.WaitGroup
	ids := make([]string, 3)
	for i := range ids {
		wg.Go(func() {
			var sb sandboxOutput
			if _, err := c.try("create_sandbox", map[string]any{"labels": map[string]string{"worker": strconv.Itoa(i)}}, &sb); err != nil {
				t.Error(err)
				return
			}
			ids[i] = sb.SandboxID
			if _, err := c.try("write_file", map[string]any{"sandbox_id": sb.SandboxID, "path": "me.txt", "content": strconv.Itoa(i)}, nil); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	var blocked execOutput
	wg.Go(func() {
		if _, err := c.try("exec_command", map[string]any{"sandbox_id": ids[0], "timeout_seconds": 30,
			"command": "while [ ! -f go ]; do sleep 0.05; done; cat me.txt"}, &blocked); err != nil {
			t.Error(err)
		}
	})
	outs := make([]execOutput, 3)
	for i, id := range ids {
		wg.Go(func() {
			if _, err := c.try("run_code", map[string]any{"sandbox_id": id, "language": "python", "code": "print(open('me.txt').read())"}, &outs[i]); err != nil {
				t.Error(err)
			}
		})
	}
	time.Sleep(200 * time.Millisecond)
	c.ok("exec_command", map[string]any{"sandbox_id": ids[0], "command": "touch go"}, nil)
	wg.Wait()
	if blocked.Verdict != "ok" || blocked.Stdout != "0" {
		t.Errorf("the waiting command: %+v", blocked)
	}
	for i, out := range outs {
		if out.Stdout != strconv.Itoa(i)+"\n" {
			t.Errorf("sandbox %d: %+v", i, out)
		}
	}
}

// TestRunCodeFilename checks run_code's filename, the conflict's hint
// and a language taken from the sandbox.
func TestRunCodeFilename(t *testing.T) {
	svc := newService(t)
	c := connect(t, New(svc, Options{}))
	var sb sandboxOutput
	c.ok("create_sandbox", map[string]any{"language": "python"}, &sb)
	c.ok("write_file", map[string]any{"sandbox_id": sb.SandboxID, "path": "main.py", "content": "mine = True\n"}, nil)
	msg := c.fails("run_code", map[string]any{"sandbox_id": sb.SandboxID, "language": "python", "code": "print(1)"}, "main.py")
	if !strings.Contains(msg, "filename") {
		t.Errorf("conflict: %s", msg)
	}
	var out execOutput
	// The sandbox's language is the default.
	c.ok("run_code", map[string]any{"sandbox_id": sb.SandboxID, "filename": "job.py", "code": "import main\nprint(main.mine)"}, &out)
	if out.Stdout != "True\n" {
		t.Fatalf("run with a filename: %+v", out)
	}
	var rf readFileOutput
	c.ok("read_file", map[string]any{"sandbox_id": sb.SandboxID, "path": "job.py"}, &rf)
	if !strings.Contains(rf.Content, "import main") {
		t.Errorf("job.py: %+v", rf)
	}
	c.ok("read_file", map[string]any{"sandbox_id": sb.SandboxID, "path": "main.py"}, &rf)
	if rf.Content != "mine = True\n" {
		t.Errorf("main.py: %+v", rf)
	}

	// A name without the extension gets it, rather than main.py, which
	// is the user's here.
	res := c.ok("run_code", map[string]any{"sandbox_id": sb.SandboxID, "filename": "snippet", "code": "import sys\nprint(sys.argv[0])"}, &out)
	if out.Verdict != "ok" || out.Stdout != "snippet.py\n" {
		t.Fatalf("run with a filename without extension: %+v\n%s", out, text(res))
	}
	// One with another language's extension is refused, naming the one
	// to use.
	msg = c.fails("run_code", map[string]any{"sandbox_id": sb.SandboxID, "filename": "snippet.js", "code": "print(1)"}, "error (invalid)")
	for _, want := range []string{"javascript", ".py", "snippet.py"} {
		if !strings.Contains(msg, want) {
			t.Errorf("other language's extension: %q lacks %q", msg, want)
		}
	}
}

// TestProcessTools checks list_processes and what the process tools say
// about a timeout, a lost pid, an exited process and an empty command.
func TestProcessTools(t *testing.T) {
	svc := newService(t)
	c := connect(t, New(svc, Options{}))
	var sb sandboxOutput
	c.ok("create_sandbox", map[string]any{}, &sb)
	id := sb.SandboxID

	var p processOutput
	c.ok("start_process", map[string]any{"sandbox_id": id, "command": "sleep 30", "name": "napper", "timeout_seconds": 0.3}, &p)
	var logs processLogsOutput
	res := c.ok("process_logs", map[string]any{"sandbox_id": id, "pid": p.PID, "wait_seconds": 20}, &logs)
	if logs.Exit == nil || logs.Exit.Verdict != "timeout" || logs.Exit.Message != "killed: wall-clock timeout after 300ms" {
		t.Fatalf("timed out process: %+v", logs.Exit)
	}
	if h := logs.Exit.Hint; !strings.Contains(h, "timeout_seconds of 0.3s") || strings.Contains(h, "in the background") || !strings.Contains(text(res), "hint: "+h) {
		t.Errorf("hint %q, text:\n%s", h, text(res))
	}

	var l listProcessesOutput
	res = c.ok("list_processes", map[string]any{"sandbox_id": id}, &l)
	if len(l.Processes) != 1 || l.Processes[0].PID != p.PID || l.Processes[0].Name != "napper" || l.Processes[0].State != "exited" ||
		l.Processes[0].Command != "sleep 30" || l.Processes[0].Exit == nil || l.Processes[0].Exit.Verdict != "timeout" {
		t.Fatalf("list: %+v", l)
	}
	if !strings.Contains(text(res), fmt.Sprintf("%d (napper): exited", p.PID)) {
		t.Errorf("list text: %s", text(res))
	}

	msg := c.fails("kill_process", map[string]any{"sandbox_id": id, "pid": 4242}, "not_found")
	if !strings.Contains(msg, "list_processes") {
		t.Errorf("unknown pid: %s", msg)
	}
	msg = c.fails("process_logs", map[string]any{"sandbox_id": id, "pid": 4242}, "not_found")
	if !strings.Contains(msg, "list_processes") {
		t.Errorf("unknown pid: %s", msg)
	}

	msg = c.fails("kill_process", map[string]any{"sandbox_id": id, "pid": p.PID}, "error (conflict): ")
	if want := fmt.Sprintf("process %d has already exited (killed at its timeout); nothing was signalled", p.PID); !strings.Contains(msg, want) ||
		!strings.Contains(msg, "process_logs shows its output") || strings.Contains(msg, "sent SIGTERM") {
		t.Errorf("kill an exited process: %s", msg)
	}
	var sig signalledOutput
	c.ok("start_process", map[string]any{"sandbox_id": id, "command": "sleep 30"}, &p)
	res = c.ok("kill_process", map[string]any{"sandbox_id": id, "pid": p.PID}, &sig)
	if sig.Signal != "SIGTERM" || !strings.Contains(text(res), "sent SIGTERM") {
		t.Errorf("kill a running process: %+v\n%s", sig, text(res))
	}

	for _, tool := range []string{"exec_command", "start_process"} {
		msg := c.fails(tool, map[string]any{"sandbox_id": id, "command": " "}, "command is empty")
		if strings.Contains(msg, "(cmd)") || strings.Contains(msg, "(shell)") {
			t.Errorf("%s: %s", tool, msg)
		}
	}
}

// TestWaitProcessTool: wait_process says how a process ended as
// exec_command would, without its output; a process still running when the
// time is up is said to be, with what to do next; an unknown pid is an
// error that says how to find one.
func TestWaitProcessTool(t *testing.T) {
	svc := newService(t)
	c := connect(t, New(svc, Options{}))
	var sb sandboxOutput
	c.ok("create_sandbox", map[string]any{}, &sb)
	id := sb.SandboxID

	var p processOutput
	c.ok("start_process", map[string]any{"sandbox_id": id, "command": "echo hidden; sleep 0.5; exit 3", "name": "job"}, &p)
	var w processOutput
	res := c.ok("wait_process", map[string]any{"sandbox_id": id, "pid": p.PID}, &w)
	got := text(res)
	if w.PID != p.PID || w.Name != "job" || w.State != "exited" || w.Exit == nil || w.Exit.Verdict != "exit_nonzero" || w.Exit.ExitCode != 3 {
		t.Fatalf("wait for a process that exits: %+v (exit %+v)\n%s", w, w.Exit, got)
	}
	lines := strings.Split(got, "\n")
	if len(lines) < 3 || lines[0] != fmt.Sprintf("process %d (job) in sandbox %s: echo hidden; sleep 0.5; exit 3", p.PID, id) ||
		!strings.HasPrefix(lines[1], "exited: exit code 3 · ") || !strings.Contains(got, "\noutput: not shown here; process_logs reads it\n") || strings.Contains(got, "stdout") {
		t.Errorf("text:\n%s", got)
	}

	c.ok("start_process", map[string]any{"sandbox_id": id, "command": "sleep 30"}, &p)
	start := time.Now()
	res = c.ok("wait_process", map[string]any{"sandbox_id": id, "pid": p.PID, "timeout_seconds": 0.5}, &w)
	got = text(res)
	if d := time.Since(start); d < 500*time.Millisecond || w.State != "running" || w.Exit != nil {
		t.Fatalf("wait for a process that runs on: %+v after %v\n%s", w, d, got)
	}
	if !strings.Contains(got, "still running after 0.5s of waiting") || !strings.Contains(got, "call wait_process again") || !strings.Contains(got, "process_logs") {
		t.Errorf("text:\n%s", got)
	}
	// Killed while it is waited for.
	go func() {
		time.Sleep(200 * time.Millisecond)
		svc.SignalProcess(context.Background(), id, p.PID, "KILL")
	}()
	res = c.ok("wait_process", map[string]any{"sandbox_id": id, "pid": p.PID}, &w)
	if got := text(res); w.Exit == nil || w.Exit.Verdict != "killed" || !strings.Contains(got, "exited: killed by SIGKILL") {
		t.Errorf("wait for a process killed meanwhile: %+v\n%s", w.Exit, got)
	}

	msg := c.fails("wait_process", map[string]any{"sandbox_id": id, "pid": 4242}, "not_found")
	if !strings.Contains(msg, "list_processes") {
		t.Errorf("unknown pid: %s", msg)
	}
}

// staleProcesses is a service whose GetProcess still sees every process
// running, as a look taken just before the process exited does.
type staleProcesses struct{ cove.Service }

func (s staleProcesses) GetProcess(ctx context.Context, id string, pid int) (*cove.Process, error) {
	p, err := s.Service.GetProcess(ctx, id, pid)
	if err == nil {
		p.State, p.Result = cove.ProcessRunning, nil
	}
	return p, err
}

// TestKillProcessThatExitedAfterALook: a process that exits between a
// look at it and the signal is not said to be signalled; kill_process
// answers from the signal alone.
func TestKillProcessThatExitedAfterALook(t *testing.T) {
	svc := newService(t)
	c := connect(t, New(staleProcesses{svc}, Options{}))
	var sb sandboxOutput
	c.ok("create_sandbox", map[string]any{}, &sb)
	var p processOutput
	c.ok("start_process", map[string]any{"sandbox_id": sb.SandboxID, "command": "exit 3"}, &p)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		q, err := svc.GetProcess(context.Background(), sb.SandboxID, p.PID)
		if err != nil {
			t.Fatal(err)
		}
		if q.State == cove.ProcessExited {
			if q.Result == nil || q.Result.ExitCode != 3 {
				t.Fatalf("the process did not exit with 3: %+v", q.Result)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the process did not exit")
		}
	}
	msg := c.fails("kill_process", map[string]any{"sandbox_id": sb.SandboxID, "pid": p.PID, "signal": "SIGKILL"}, "error (conflict): ")
	if want := fmt.Sprintf("process %d has already exited (exit status 3); nothing was signalled", p.PID); !strings.Contains(msg, want) || strings.Contains(msg, "sent SIGKILL") {
		t.Errorf("kill_process said %q, want %q", msg, want)
	}
}

// TestFileToolHints checks the hints of file errors and a read past the
// end, and the types of resources.
func TestFileToolHints(t *testing.T) {
	svc := newService(t)
	c := connect(t, New(svc, Options{}))
	var sb sandboxOutput
	c.ok("create_sandbox", map[string]any{}, &sb)
	id := sb.SandboxID
	c.ok("write_file", map[string]any{"sandbox_id": id, "path": "sub/notes", "content": "hello"}, nil)
	c.ok("write_file", map[string]any{"sandbox_id": id, "path": "page.html", "content": "<p>hi</p>"}, nil)

	msg := c.fails("delete_file", map[string]any{"sandbox_id": id, "path": "sub"}, "conflict")
	if !strings.Contains(msg, "recursive: true") || strings.Contains(msg, "start_sandbox") {
		t.Errorf("delete a non-empty directory: %s", msg)
	}
	msg = c.fails("read_file", map[string]any{"sandbox_id": id, "path": "sub"}, "is a directory")
	if !strings.Contains(msg, "hint:") || !strings.Contains(msg, "list_files") {
		t.Errorf("read a directory: %s", msg)
	}
	msg = c.fails("read_file", map[string]any{"sandbox_id": id, "path": "sub/notes", "offset": 100}, "past the end")
	if !strings.Contains(msg, "has 5 bytes") {
		t.Errorf("read past the end: %s", msg)
	}
	c.ok("write_file", map[string]any{"sandbox_id": id, "path": "empty", "content": ""}, nil)
	msg = c.fails("read_file", map[string]any{"sandbox_id": id, "path": "empty", "offset": 1}, "past the end")
	if !strings.Contains(msg, "which is empty: read it without an offset") {
		t.Errorf("an offset into an empty file: %s", msg)
	}
	msg = c.fails("read_file", map[string]any{"sandbox_id": id, "path": "nope.txt"}, "not_found")
	if !strings.Contains(msg, "list_files") {
		t.Errorf("read a missing file: %s", msg)
	}

	lr, err := c.cs.ListResources(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]string{}
	for _, r := range lr.Resources {
		types[r.Name] = r.MIMEType
	}
	if types["sub/notes"] != "application/octet-stream" || types["page.html"] != "text/html" {
		t.Errorf("resource types: %v", types)
	}
}

// TestCancelledCall checks that a cancelled call is a clear tool error,
// not an internal one.
func TestCancelledCall(t *testing.T) {
	srv := New(nil, Options{})
	for _, err := range []error{context.Canceled, fmt.Errorf("reading: %w", context.Canceled)} {
		got := srv.fail("run_code", err).Error()
		if !strings.HasPrefix(got, "error (unavailable): the call was cancelled") || strings.Contains(got, "internal") {
			t.Errorf("%v: %s", err, got)
		}
	}
}

// TestNotACoveServer checks what the tools say when cove mcp's server
// URL answers, but not as a cove server.
func TestNotACoveServer(t *testing.T) {
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, "404 page not found\n")
	}))
	defer hs.Close()
	cl, err := client.New(hs.URL, "key")
	if err != nil {
		t.Fatal(err)
	}
	c := connect(t, New(cl, Options{}))
	msg := c.fails("list_sandboxes", map[string]any{}, "does not answer as a cove server")
	if strings.Contains(msg, "not_found") || strings.Contains(msg, "list_sandboxes lists") {
		t.Errorf("list_sandboxes: %s", msg)
	}
}

// TestUnreachableServer checks what the tools say when nothing listens
// at cove mcp's server URL: that the server cannot be reached, and what
// to do about it.
func TestUnreachableServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String()
	l.Close()
	cl, err := client.New(url, "key")
	if err != nil {
		t.Fatal(err)
	}
	c := connect(t, New(cl, Options{}))
	for _, call := range []struct {
		tool string
		args map[string]any
	}{
		{"list_sandboxes", map[string]any{}},
		{"run_code", map[string]any{"language": "py", "code": "print(1)"}},
		{"read_file", map[string]any{"sandbox_id": "x", "path": "a.txt"}},
	} {
		msg := c.fails(call.tool, call.args, "error (unavailable): cannot reach cove at "+url)
		if !strings.Contains(msg, "\nhint: ") || !strings.Contains(msg, "cove serve") || !strings.Contains(msg, "COVE_URL") {
			t.Errorf("%s: no hint to start the server or fix COVE_URL: %q", call.tool, msg)
		}
	}
}

// TestLanguageAliases checks that the tools take the names and aliases
// of languages that the CLI and REST take, resolved as they resolve
// them, through real tools/call requests.
func TestLanguageAliases(t *testing.T) {
	svc := newService(t)
	c := connect(t, New(svc, Options{}))
	// Each program runs only in its own language, and says which.
	programs := map[string]struct{ code, want string }{
		"python":     {`print("python", 2 ** 3)`, "python 8\n"},
		"javascript": {`console.log("javascript", require("path").basename(__filename))`, "javascript main.js\n"},
		"typescript": {`const n: number = 8; console.log("typescript", n)`, "typescript 8\n"},
		"bash":       {`echo "bash ${BASH_VERSION:+yes}"`, "bash yes\n"},
	}
	for _, l := range lang.All() {
		p, ok := programs[l.Name]
		if !ok {
			t.Fatalf("no program for %s", l.Name)
		}
		for _, name := range append([]string{l.Name, strings.ToUpper(l.Name[:1]) + l.Name[1:]}, l.Aliases...) {
			var out execOutput
			c.ok("run_code", map[string]any{"language": name, "code": p.code}, &out)
			if out.Verdict != "ok" || out.Stdout != p.want {
				t.Errorf("run_code with language %q: %s, stdout %q, stderr %q; want %q", name, out.Verdict, out.Stdout, out.Stderr, p.want)
			}
		}
	}

	// A sandbox made with an alias has the language's name, which
	// run_code then takes by default.
	var sb sandboxOutput
	c.ok("create_sandbox", map[string]any{"language": "py"}, &sb)
	if sb.Language != "python" {
		t.Errorf("create_sandbox with py: language %q", sb.Language)
	}
	var out execOutput
	c.ok("run_code", map[string]any{"sandbox_id": sb.SandboxID, "code": programs["python"].code}, &out)
	if out.Stdout != programs["python"].want {
		t.Errorf("run_code in a sandbox made with py: %s, stdout %q, stderr %q", out.Verdict, out.Stdout, out.Stderr)
	}

	// An alias and the name are one language: they share the session's
	// context.
	var cell cellOutput
	c.ok("run_in_context", map[string]any{"language": "py", "code": "x = 41"}, &cell)
	c.ok("run_in_context", map[string]any{"language": "python", "code": "x + 1"}, &cell)
	if cell.Result != "42" || cell.Language != "python" || cell.NewContext {
		t.Errorf("python after py: result %q, language %q, new context %v", cell.Result, cell.Language, cell.NewContext)
	}
}

// TestGoneSandbox checks what a model reads when it names a sandbox that
// this session worked in and that is gone: that it is gone and why, rather
// than to check an id that was right.
func TestGoneSandbox(t *testing.T) {
	svc := newService(t)
	c := connect(t, New(svc, Options{}))
	ctx := context.Background()
	var a, b sandboxOutput
	c.ok("create_sandbox", map[string]any{}, &a)
	c.ok("create_sandbox", map[string]any{}, &b)
	c.ok("write_file", map[string]any{"sandbox_id": a.SandboxID, "path": "x.txt", "content": "x"}, nil)

	// A file missing from a sandbox that is there keeps the file hint.
	c.fails("read_file", map[string]any{"sandbox_id": a.SandboxID, "path": "nope.txt"}, "hint: check the sandbox_id and the path")

	// Deleted outside the session, as a ttl does.
	if err := svc.DeleteSandbox(ctx, a.SandboxID); err != nil {
		t.Fatal(err)
	}
	for _, call := range []struct {
		tool string
		args map[string]any
	}{
		{"exec_command", map[string]any{"sandbox_id": a.SandboxID, "command": "ls"}},
		{"read_file", map[string]any{"sandbox_id": a.SandboxID, "path": "x.txt"}},
		{"run_code", map[string]any{"sandbox_id": a.SandboxID, "code": "print(1)", "language": "python"}},
	} {
		got := c.fails(call.tool, call.args, "error (not_found)")
		// The message says why it went (its reason is sandbox_gone), the
		// hint what to do.
		if !strings.Contains(got, "is gone: it was deleted on request") || !strings.Contains(got, "hint: sandbox "+a.SandboxID+", which this session worked in, no longer exists, and its files went with it; create_sandbox makes a new one (keep and ttl_seconds say how long it lives)") {
			t.Errorf("%s in a sandbox deleted elsewhere: %s", call.tool, got)
		}
	}

	// Deleted by the session itself.
	c.ok("delete_sandbox", map[string]any{"sandbox_id": b.SandboxID}, nil)
	got := c.fails("exec_command", map[string]any{"sandbox_id": b.SandboxID, "command": "ls"}, "error (not_found)")
	if !strings.Contains(got, "hint: this session deleted sandbox "+b.SandboxID+" (delete_sandbox)") {
		t.Errorf("a sandbox the session deleted: %s", got)
	}

	// A sandbox the session never knew keeps the plain hint.
	got = c.fails("exec_command", map[string]any{"sandbox_id": "nosuchsandbox", "command": "ls"}, "error (not_found)")
	if !strings.Contains(got, "hint: check the sandbox_id: list_sandboxes lists your sandboxes") {
		t.Errorf("an unknown sandbox: %s", got)
	}

	// Where sandboxes end with the session, keep is not offered.
	c = connect(t, New(svc, Options{InProcess: true}))
	c.ok("create_sandbox", map[string]any{}, &a)
	if err := svc.DeleteSandbox(ctx, a.SandboxID); err != nil {
		t.Fatal(err)
	}
	got = c.fails("exec_command", map[string]any{"sandbox_id": a.SandboxID, "command": "ls"}, "error (not_found)")
	if !strings.Contains(got, "create_sandbox makes a new one (ttl_seconds says how long it lives, at most until this session ends)") || strings.Contains(got, "keep") {
		t.Errorf("a sandbox gone in process: %s", got)
	}
}

// TestReadFileParts checks how read_file bounds what a model reads: a
// default part that does not flood its context, a part that starts inside
// a character starting at the next one rather than turning binary, and an
// image too large to come back as one saying so.
func TestReadFileParts(t *testing.T) {
	svc := newService(t)
	c := connect(t, New(svc, Options{}))
	var sb sandboxOutput
	c.ok("create_sandbox", map[string]any{}, &sb)
	id := sb.SandboxID
	c.ok("write_file", map[string]any{"sandbox_id": id, "path": "e.txt", "content": strings.Repeat("é", 30000)}, nil)

	var rf readFileOutput
	c.ok("read_file", map[string]any{"sandbox_id": id, "path": "e.txt"}, &rf)
	if rf.Encoding != "text" || len(rf.Content) != defaultReadBytes || rf.NextOffset != defaultReadBytes || defaultReadBytes > 2*DefaultMaxOutputChars {
		t.Errorf("default part: %d bytes of %s, next %d", len(rf.Content), rf.Encoding, rf.NextOffset)
	}
	res := c.ok("read_file", map[string]any{"sandbox_id": id, "path": "e.txt", "offset": 1, "max_bytes": 5}, &rf)
	if rf.Encoding != "text" || rf.Content != "éé" || rf.Offset != 2 || rf.NextOffset != 6 || !strings.Contains(text(res), "bytes 2 to 6") {
		t.Errorf("a part from inside a character: %+v\n%s", rf, text(res))
	}

	// Parts of lines end with a line, where a part holds one.
	c.ok("write_file", map[string]any{"sandbox_id": id, "path": "lines.txt", "content": "one\ntwo\nthree\nfour"}, nil)
	var parts []string
	for offset := int64(0); ; {
		res = c.ok("read_file", map[string]any{"sandbox_id": id, "path": "lines.txt", "offset": offset, "max_bytes": 10}, &rf)
		parts = append(parts, rf.Content)
		if rf.NextOffset == 0 {
			break
		}
		if rf.NextOffset != rf.Offset+int64(len(rf.Content)) || !strings.Contains(text(res), fmt.Sprintf("offset %d reads the next part", rf.NextOffset)) {
			t.Fatalf("part at %d: %+v\n%s", offset, rf, text(res))
		}
		offset = rf.NextOffset
	}
	if want := []string{"one\ntwo\n", "three\nfour"}; !slices.Equal(parts, want) {
		t.Errorf("parts of lines: %q, want %q", parts, want)
	}
	c.ok("read_file", map[string]any{"sandbox_id": id, "path": "lines.txt", "offset": 8, "max_bytes": 3}, &rf)
	if rf.Content != "thr" || rf.NextOffset != 11 {
		t.Errorf("a part inside a line longer than max_bytes: %+v", rf)
	}

	big := append([]byte("\x89PNG\r\n\x1a\n"), make([]byte, maxReadBytes)...)
	c.ok("write_file", map[string]any{"sandbox_id": id, "path": "big.png", "content": base64.StdEncoding.EncodeToString(big), "base64": true}, nil)
	res = c.ok("read_file", map[string]any{"sandbox_id": id, "path": "big.png"}, &rf)
	if rf.Encoding != "base64" || len(images(res)) != 0 || !strings.Contains(text(res), "too large to come back as an image (more than 4 MiB)") {
		t.Errorf("a large image: %+v\n%.300s", rf.Encoding, text(res))
	}
}

// TestReadFilePartFarIn: a part far into a file is read from its offset,
// not by reading all that comes before it (the tail of a 12 GiB sparse
// file took many seconds of that).
func TestReadFilePartFarIn(t *testing.T) {
	svc := newService(t)
	c := connect(t, New(svc, Options{}))
	ctx := context.Background()
	l := cove.DefaultLimits()
	l.DiskBytes = 16 << 30
	sb, err := svc.CreateSandbox(ctx, cove.SandboxSpec{Limits: l})
	if err != nil {
		t.Skipf("a sandbox with a disk of 16 GiB: %v", err)
	}
	st, err := svc.Exec(ctx, sb.ID, cove.ExecRequest{Cmd: []string{"sh", "-c", "truncate -s 12G huge && printf tail >> huge"}})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := cove.Collect(st); err != nil || res.Verdict != cove.VerdictOK {
		t.Fatalf("making the sparse file: %+v %v", res, err)
	}
	start := time.Now()
	var rf readFileOutput
	c.ok("read_file", map[string]any{"sandbox_id": sb.ID, "path": "huge", "offset": 12 << 30}, &rf)
	if took := time.Since(start); rf.Content != "tail" || rf.Size != 12<<30+4 || took > 3*time.Second {
		t.Fatalf("the tail of a 12 GiB file: %+v in %v", rf, took)
	}
}

// TestReadFileCap checks that a part of text is bounded for a model's
// context whatever max_bytes asks, with the next part a call away, and
// that an image is still read whole.
func TestReadFileCap(t *testing.T) {
	svc := newService(t)
	c := connect(t, New(svc, Options{}))
	var sb sandboxOutput
	c.ok("create_sandbox", map[string]any{}, &sb)
	id := sb.SandboxID
	var run execOutput
	c.ok("exec_command", map[string]any{"sandbox_id": id, "command": "seq 1 300000 > big.txt && head -c 200000 /dev/urandom > big.bin"}, &run)
	if run.Verdict != "ok" {
		t.Fatalf("making the files: %+v", run)
	}
	var rf readFileOutput
	res := c.ok("read_file", map[string]any{"sandbox_id": id, "path": "big.txt", "max_bytes": 4 << 20}, &rf)
	if rf.Encoding != "text" || len(rf.Content) > maxPartBytes || len(rf.Content) < maxPartBytes-10 || rf.NextOffset != int64(len(rf.Content)) || !strings.HasSuffix(rf.Content, "\n") {
		t.Errorf("a large part asked for: %d bytes of %s, next %d", len(rf.Content), rf.Encoding, rf.NextOffset)
	}
	if got := text(res); len(got) > maxPartBytes+500 || !strings.Contains(got, fmt.Sprintf("read_file with offset %d reads the next part (at most 64 KiB a call;", rf.NextOffset)) {
		t.Errorf("text of %d bytes, ending %q", len(got), got[max(0, len(got)-300):])
	}
	c.ok("read_file", map[string]any{"sandbox_id": id, "path": "big.bin", "max_bytes": 1 << 20}, &rf)
	if raw, err := base64.StdEncoding.DecodeString(rf.Content); err != nil || rf.Encoding != "base64" || len(raw) != maxPartBytes || rf.NextOffset != maxPartBytes {
		t.Errorf("binary: %d bytes of %s (%v), next %d", len(raw), rf.Encoding, err, rf.NextOffset)
	}

	var pngData bytes.Buffer
	img := image.NewRGBA(image.Rect(0, 0, 300, 300))
	rand.Read(img.Pix) // noise, which does not compress below a part
	if err := png.Encode(&pngData, img); err != nil {
		t.Fatal(err)
	}
	if pngData.Len() <= maxPartBytes {
		t.Fatalf("the image has %d bytes, no more than a part", pngData.Len())
	}
	c.ok("write_file", map[string]any{"sandbox_id": id, "path": "chart.png", "content": base64.StdEncoding.EncodeToString(pngData.Bytes()), "base64": true}, nil)
	res = c.ok("read_file", map[string]any{"sandbox_id": id, "path": "chart.png"}, &rf)
	if imgs := images(res); rf.Encoding != "image" || len(imgs) != 1 || !bytes.Equal(imgs[0].Data, pngData.Bytes()) {
		t.Errorf("an image of %d bytes: %s, %d images", pngData.Len(), rf.Encoding, len(imgs))
	}
}

// TestProcessLogsText checks how process_logs reads: the command as it
// was given (not its sh -c wrapping), long output cut with advice that
// fits a background process, and how a killed process ended said once.
func TestProcessLogsText(t *testing.T) {
	svc := newService(t)
	c := connect(t, New(svc, Options{}))
	var sb sandboxOutput
	c.ok("create_sandbox", map[string]any{}, &sb)
	id := sb.SandboxID

	var p processOutput
	c.ok("start_process", map[string]any{"sandbox_id": id, "command": "seq 1 20000"}, &p)
	var logs processLogsOutput
	res := c.ok("process_logs", map[string]any{"sandbox_id": id, "pid": p.PID, "wait_seconds": 20}, &logs)
	if first, _, _ := strings.Cut(text(res), "\n"); first != fmt.Sprintf("process %d in sandbox %s: seq 1 20000", p.PID, id) {
		t.Errorf("first line %q", first)
	}
	if !strings.Contains(logs.Stdout, "bytes cut here") || !strings.Contains(logs.Stdout, "command > out.log 2>&1") || !strings.HasSuffix(logs.Stdout, "20000\n") {
		t.Errorf("long output: %.300s", logs.Stdout)
	}

	c.ok("start_process", map[string]any{"sandbox_id": id, "command": "sleep 30"}, &p)
	c.ok("kill_process", map[string]any{"sandbox_id": id, "pid": p.PID}, nil)
	res = c.ok("process_logs", map[string]any{"sandbox_id": id, "pid": p.PID, "wait_seconds": 20}, &logs)
	if got := text(res); !strings.Contains(got, "exited: killed by SIGTERM") || strings.Count(got, "killed by SIGTERM") != 1 {
		t.Errorf("killed process: %s", got)
	}
}

// TestHintsFitTheError checks that hints speak of what went wrong: a
// stopped sandbox only for a conflict a stopped sandbox explains, the
// cwd for a command that could not start in a missing directory, and
// exec_command for a shell cell.
func TestHintsFitTheError(t *testing.T) {
	svc := newService(t)
	c := connect(t, New(svc, Options{}))
	var sb sandboxOutput
	c.ok("create_sandbox", map[string]any{}, &sb)
	id := sb.SandboxID

	c.ok("write_file", map[string]any{"sandbox_id": id, "path": "d/f", "content": "x"}, nil)
	msg := c.fails("write_file", map[string]any{"sandbox_id": id, "path": "d/f/g", "content": "x"}, "error (conflict)")
	if strings.Contains(msg, "start_sandbox") || strings.Contains(msg, "stopped") {
		t.Errorf("a file in the way: %s", msg)
	}
	var p processOutput
	c.ok("start_process", map[string]any{"sandbox_id": id, "command": "exit 0"}, &p)
	c.ok("wait_process", map[string]any{"sandbox_id": id, "pid": p.PID}, nil)
	msg = c.fails("kill_process", map[string]any{"sandbox_id": id, "pid": p.PID}, "error (conflict)")
	if strings.Contains(msg, "start_sandbox") || !strings.Contains(msg, "process_logs") {
		t.Errorf("an exited process: %s", msg)
	}

	var out execOutput
	res := c.ok("exec_command", map[string]any{"sandbox_id": id, "command": "ls", "cwd": "/workspace/nowhere"}, &out)
	if out.Verdict != "setup_failed" || !strings.Contains(out.Hint, "cwd /workspace/nowhere, which is not a directory") || strings.Contains(out.Hint, "the language") || !strings.Contains(text(res), "hint: "+out.Hint) {
		t.Errorf("a missing cwd: %+v", out)
	}
	c.ok("exec_command", map[string]any{"sandbox_id": id, "command": "ls", "cwd": "nowhere"}, &out)
	if out.Verdict != "setup_failed" || !strings.Contains(out.Hint, "cwd nowhere, which is not a directory of the sandbox: create it first (exec_command with mkdir -p nowhere, or write_file a file in it)") || strings.Contains(out.Hint, "absolute") {
		t.Errorf("a missing relative cwd: %+v", out)
	}
	for _, cwd := range []string{"/workspace/d", "d"} {
		c.ok("exec_command", map[string]any{"sandbox_id": id, "command": "pwd", "cwd": cwd}, &out)
		if out.Stdout != "/workspace/d\n" {
			t.Errorf("an existing cwd %s: %+v", cwd, out)
		}
	}

	msg = c.fails("run_in_context", map[string]any{"sandbox_id": id, "language": "bash", "code": "ls"}, "error (invalid)")
	if !strings.Contains(msg, "for shell commands use exec_command") {
		t.Errorf("a bash cell: %s", msg)
	}
	msg = c.fails("run_code", map[string]any{"sandbox_id": id, "language": "python", "code": "print(1)", "memory_mb": 64}, "error (invalid)")
	if !strings.Contains(msg, "hint: fix that argument as the message says") || strings.Contains(msg, "taken instead") {
		t.Errorf("an argument that does not fit: %s", msg)
	}

	if _, err := svc.StopSandbox(context.Background(), id); err != nil {
		t.Fatal(err)
	}
	msg = c.fails("exec_command", map[string]any{"sandbox_id": id, "command": "ls"}, "error (conflict)")
	if !strings.Contains(msg, "sandbox "+id+" is stopped") || !strings.Contains(msg, "start_sandbox") {
		t.Errorf("a stopped sandbox: %s", msg)
	}
}

// TestFullWorkspaceHint checks that a program that could not start
// because the workspace is full gets the hint of a full disk, not one
// about the command or the language.
func TestFullWorkspaceHint(t *testing.T) {
	svc := newService(t)
	c := connect(t, New(svc, Options{}))
	var sb sandboxOutput
	c.ok("create_sandbox", map[string]any{"disk_mb": 4}, &sb)
	var out execOutput
	c.ok("exec_command", map[string]any{"sandbox_id": sb.SandboxID, "command": "head -c 8M /dev/zero > fill; true"}, &out)
	res := c.ok("run_code", map[string]any{"sandbox_id": sb.SandboxID, "language": "python", "code": "print('" + strings.Repeat("x", 100000) + "')"}, &out)
	if out.Verdict != "setup_failed" || !strings.Contains(out.Message, "no space left") {
		t.Fatalf("a program written to a full workspace: %+v", out)
	}
	if !strings.Contains(out.Hint, "the workspace has no space left: delete files") || !strings.Contains(out.Hint, "disk_mb") || strings.Contains(out.Hint, "the language") || !strings.Contains(text(res), "hint: "+out.Hint) {
		t.Errorf("the hint of a full workspace: %q", out.Hint)
	}
}

// TestKillProcessSignals checks that kill_process takes a signal as the
// service does (without SIG, in any case, by number) and suggests the
// name of a slip.
func TestKillProcessSignals(t *testing.T) {
	svc := newService(t)
	c := connect(t, New(svc, Options{}))
	var sb sandboxOutput
	c.ok("create_sandbox", map[string]any{}, &sb)
	for _, tt := range []struct {
		signal any
		want   string
	}{
		{"TERM", "SIGTERM"}, {"kill", "SIGKILL"}, {" sigkill ", "SIGKILL"}, {"9", "SIGKILL"}, {15, "SIGTERM"},
	} {
		var p processOutput
		c.ok("start_process", map[string]any{"sandbox_id": sb.SandboxID, "command": "sleep 30"}, &p)
		var sent signalledOutput
		res := c.ok("kill_process", map[string]any{"sandbox_id": sb.SandboxID, "pid": p.PID, "signal": tt.signal}, &sent)
		if sent.Signal != tt.want || !strings.Contains(text(res), "sent "+tt.want) {
			t.Errorf("signal %v: %+v %s", tt.signal, sent, text(res))
		}
		var w processOutput
		c.ok("wait_process", map[string]any{"sandbox_id": sb.SandboxID, "pid": p.PID, "timeout_seconds": 20}, &w)
		if w.State != "exited" {
			t.Errorf("signal %v: the process did not exit: %+v", tt.signal, w)
		}
	}
	for signal, want := range map[string]string{"SIGTREM": `did you mean "SIGTERM"?`, "kil": `did you mean "SIGKILL"?`} {
		msg := c.fails("kill_process", map[string]any{"sandbox_id": sb.SandboxID, "pid": 1, "signal": signal}, "error (invalid)")
		if !strings.Contains(msg, want) {
			t.Errorf("signal %q: %s", signal, msg)
		}
	}
}
