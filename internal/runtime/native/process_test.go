package native

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/agent"
	"github.com/cove-sandbox/cove/internal/runtime"
)

var testEnv = []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/workspace", "LANG=C.UTF-8"}

var procSeq struct {
	sync.Mutex
	n int
}

// newProcessSandbox creates a sandbox for the tests of background
// processes and terminals; it is destroyed when t ends.
func newProcessSandbox(t *testing.T) runtime.Instance {
	t.Helper()
	b := newTestBackend(t)
	procSeq.Lock()
	procSeq.n++
	id := fmt.Sprintf("proc%d-%d", os.Getpid(), procSeq.n)
	procSeq.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	inst, err := b.Create(ctx, runtime.Spec{ID: id, Limits: cove.DefaultLimits()})
	if err != nil {
		t.Fatalf("creating sandbox: %v", err)
	}
	t.Cleanup(func() { inst.Destroy(context.Background()) })
	return inst
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func shSpec(script string) *agent.ExecSpec {
	return &agent.ExecSpec{Argv: []string{"/bin/sh", "-c", script}, Env: testEnv, Dir: "/workspace"}
}

// runSh runs a shell script as an execution and returns its stdout.
func runSh(t *testing.T, inst runtime.Instance, script string) string {
	t.Helper()
	spec := shSpec(script)
	spec.TimeoutMS = 20000
	ex, err := inst.Agent().Start(testCtx(t), spec, nil)
	if err != nil {
		t.Fatalf("exec %q: %v", script, err)
	}
	defer ex.Close()
	var out, errOut bytes.Buffer
	for {
		o, err := ex.Next()
		if err != nil {
			t.Fatalf("exec %q: %v", script, err)
		}
		switch {
		case o.Result != nil:
			if o.Result.ExitCode != 0 {
				t.Fatalf("exec %q: exit %d (%s), stderr %q", script, o.Result.ExitCode, o.Result.StartError, errOut.String())
			}
			return out.String()
		case o.Stream == 1:
			out.Write(o.Data)
		default:
			errOut.Write(o.Data)
		}
	}
}

// logs is what a log stream delivered.
type logs struct {
	pieces []agent.Output // output in the order received
	result *agent.ExecResult
}

func (l logs) stream(n int) string {
	var b strings.Builder
	for _, p := range l.pieces {
		if p.Stream == n {
			b.Write(p.Data)
		}
	}
	return b.String()
}

// readLogs reads a log stream to its end, or, when until is set, until
// stdout contains until.
func readLogs(t *testing.T, ex *agent.Exec, until string) logs {
	t.Helper()
	defer ex.Close()
	var l logs
	for {
		o, err := ex.Next()
		if err == io.EOF {
			return l
		}
		if err != nil {
			t.Fatalf("reading logs: %v", err)
		}
		if o.Result != nil {
			l.result = o.Result
			continue
		}
		l.pieces = append(l.pieces, o)
		if until != "" && strings.Contains(l.stream(1), until) {
			return l
		}
	}
}

// waitExit follows a process's logs until it exits and returns its result.
func waitExit(t *testing.T, c *agent.Client, pid int) *agent.ExecResult {
	t.Helper()
	ex, err := c.Logs(testCtx(t), pid, true)
	if err != nil {
		t.Fatalf("logs of %d: %v", pid, err)
	}
	l := readLogs(t, ex, "")
	if l.result == nil {
		t.Fatalf("logs of %d ended without a result", pid)
	}
	return l.result
}

// procState returns the state letter of pid in the sandbox ("" if none).
func procState(t *testing.T, inst runtime.Instance, pid int) string {
	t.Helper()
	return strings.TrimSpace(runSh(t, inst, fmt.Sprintf(`sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' /proc/%d/status 2>/dev/null; true`, pid)))
}

// alive reports whether pid runs in the sandbox (a zombie does not).
func alive(t *testing.T, inst runtime.Instance, pid int) bool {
	t.Helper()
	s := procState(t, inst, pid)
	return s != "" && s != "Z"
}

// gone waits up to two seconds for pid to be gone from the sandbox.
func gone(t *testing.T, inst runtime.Instance, pid int) bool {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if !alive(t, inst, pid) {
			return true
		}
	}
	return false
}

// killAtEnd kills a background process when t ends, whatever happened.
func killAtEnd(t *testing.T, c *agent.Client, pid int) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c.SignalProcess(ctx, pid, int(syscall.SIGKILL))
	})
}

// lineOrder returns the position of each complete line of output in the
// order the pieces arrived, keyed by its text.
func lineOrder(pieces []agent.Output) map[string]int {
	order := map[string]int{}
	partial := map[int]string{}
	for _, p := range pieces {
		text := partial[p.Stream] + string(p.Data)
		lines := strings.Split(text, "\n")
		for _, l := range lines[:len(lines)-1] {
			order[l] = len(order)
		}
		partial[p.Stream] = lines[len(lines)-1]
	}
	return order
}

func wantCode(t *testing.T, err error, code cove.Code) {
	t.Helper()
	if cove.ErrorCode(err) != code {
		t.Fatalf("got error %v (code %q), want code %q", err, cove.ErrorCode(err), code)
	}
}

func TestBackgroundProcesses(t *testing.T) {
	backgroundProcessesOn(t, newProcessSandbox(t))
}

func backgroundProcessesOn(t *testing.T, inst runtime.Instance) {
	c := inst.Agent()

	t.Run("spawn_list_logs_signal", func(t *testing.T) {
		ctx := testCtx(t)
		script := `i=0; while :; do i=$((i+1)); echo line$i; echo err$i >&2; sleep 0.02; done`
		p, err := c.Spawn(ctx, shSpec(script), "ticker")
		if err != nil {
			t.Fatal(err)
		}
		killAtEnd(t, c, p.PID)
		if !p.Running || p.PID <= 1 || p.Name != "ticker" || p.Argv[0] != "/bin/sh" || p.StartedAt.IsZero() {
			t.Fatalf("spawned %+v", p)
		}
		ps, err := c.Processes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, q := range ps {
			found = found || (q.PID == p.PID && q.Running && q.Name == "ticker")
		}
		if !found {
			t.Fatalf("process %d not listed as running: %+v", p.PID, ps)
		}
		st, err := c.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.BackgroundProcesses < 1 {
			t.Fatalf("stats count %d background processes", st.BackgroundProcesses)
		}

		// Follow until new output has arrived, then stop following: the
		// process goes on.
		ex, err := c.Logs(ctx, p.PID, true)
		if err != nil {
			t.Fatal(err)
		}
		l := readLogs(t, ex, "line10\n")
		if !strings.HasPrefix(l.stream(1), "line1\nline2\n") || !strings.HasPrefix(l.stream(2), "err1\nerr2\n") {
			t.Fatalf("followed logs: stdout %q, stderr %q", l.stream(1), l.stream(2))
		}
		// Arrival order across the two streams: the log interleaves them
		// as the agent read them, not one stream after the other. Rounds
		// of the loop are 20 ms apart; a loaded machine may delay one pipe
		// by a round or two, never by the whole run.
		order := lineOrder(l.pieces)
		for i := 1; i+3 <= 9; i++ {
			a, b := fmt.Sprint("line", i), fmt.Sprint("err", i)
			later, laterErr := fmt.Sprint("line", i+3), fmt.Sprint("err", i+3)
			if max(order[a], order[b]) > min(order[later], order[laterErr]) {
				t.Fatalf("round %d arrived after round %d: %v", i, i+3, order)
			}
		}

		// Without follow: what is kept, then the end, with no result.
		ex, err = c.Logs(ctx, p.PID, false)
		if err != nil {
			t.Fatal(err)
		}
		l = readLogs(t, ex, "")
		if l.result != nil || !strings.Contains(l.stream(1), "line10\n") {
			t.Fatalf("logs of a running process: result %+v, stdout %d bytes", l.result, len(l.stream(1)))
		}
		if q, err := c.Process(ctx, p.PID); err != nil || !q.Running {
			t.Fatalf("after reading logs: %+v, %v", q, err)
		}

		if err := c.SignalProcess(ctx, p.PID, int(syscall.SIGTERM)); err != nil {
			t.Fatal(err)
		}
		res := waitExit(t, c, p.PID)
		if res.Signal != int(syscall.SIGTERM) || res.ExitCode != 128+int(syscall.SIGTERM) {
			t.Fatalf("after SIGTERM: %+v", res)
		}
		q, err := c.Process(ctx, p.PID)
		if err != nil {
			t.Fatal(err)
		}
		if q.Running || q.Result == nil || q.Result.Signal != int(syscall.SIGTERM) || q.Result.StdoutBytes < int64(len("line1\n")*10) {
			t.Fatalf("exited process: %+v, result %+v", q, q.Result)
		}
		// The logs of an exited process end with its result.
		ex, err = c.Logs(ctx, p.PID, false)
		if err != nil {
			t.Fatal(err)
		}
		l = readLogs(t, ex, "")
		if l.result == nil || l.result.Signal != int(syscall.SIGTERM) || !strings.HasPrefix(l.stream(1), "line1\n") {
			t.Fatalf("logs of an exited process: result %+v, stdout %q", l.result, l.stream(1))
		}
		// Signalling it again sends nothing, and says so.
		err = c.SignalProcess(ctx, p.PID, int(syscall.SIGKILL))
		wantCode(t, err, cove.CodeConflict)
		if want := fmt.Sprintf("process %d has already exited (killed by SIGTERM); nothing was signalled", p.PID); cove.ErrorMessage(err) != want {
			t.Fatalf("signalling an exited process: %q, want %q", cove.ErrorMessage(err), want)
		}
	})

	t.Run("stdin", func(t *testing.T) {
		ctx := testCtx(t)
		p, err := c.Spawn(ctx, &agent.ExecSpec{Argv: []string{"cat"}, Env: testEnv, Dir: "/workspace"}, "")
		if err != nil {
			t.Fatal(err)
		}
		killAtEnd(t, c, p.PID)
		if err := c.WriteStdin(ctx, p.PID, []byte("hello\n"), false); err != nil {
			t.Fatal(err)
		}
		ex, err := c.Logs(ctx, p.PID, true)
		if err != nil {
			t.Fatal(err)
		}
		if l := readLogs(t, ex, "hello\n"); l.stream(1) != "hello\n" {
			t.Fatalf("cat echoed %q", l.stream(1))
		}
		big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB: more than a pipe holds
		if err := c.WriteStdin(ctx, p.PID, big, false); err != nil {
			t.Fatal(err)
		}
		if err := c.WriteStdin(ctx, p.PID, []byte("world\n"), true); err != nil {
			t.Fatal(err)
		}
		res := waitExit(t, c, p.PID)
		if res.ExitCode != 0 || res.StdoutBytes != int64(len("hello\n")+len(big)+len("world\n")) {
			t.Fatalf("cat ended with %+v", res)
		}
		ex, err = c.Logs(ctx, p.PID, false)
		if err != nil {
			t.Fatal(err)
		}
		// The ring keeps the last MiB of stdout.
		if out := readLogs(t, ex, "").stream(1); len(out) != 1<<20 || !strings.HasSuffix(out, "world\n") {
			t.Fatalf("kept %d bytes of stdout ending %q", len(out), out[max(0, len(out)-10):])
		}
		wantCode(t, c.WriteStdin(ctx, p.PID, []byte("late\n"), false), cove.CodeConflict)
	})

	t.Run("stdin_closed", func(t *testing.T) {
		ctx := testCtx(t)
		p, err := c.Spawn(ctx, shSpec("cat; sleep 1000"), "")
		if err != nil {
			t.Fatal(err)
		}
		killAtEnd(t, c, p.PID)
		if err := c.WriteStdin(ctx, p.PID, nil, true); err != nil {
			t.Fatal(err)
		}
		wantCode(t, c.WriteStdin(ctx, p.PID, []byte("x"), false), cove.CodeConflict)
		if err := c.SignalProcess(ctx, p.PID, int(syscall.SIGKILL)); err != nil {
			t.Fatal(err)
		}
		if res := waitExit(t, c, p.PID); res.Signal != int(syscall.SIGKILL) {
			t.Fatalf("after SIGKILL: %+v", res)
		}
	})

	t.Run("children_die_with_it", func(t *testing.T) {
		ctx := testCtx(t)
		// A child in the process group and one that left it (setsid).
		script := `sleep 1000 & echo $! > /workspace/bg1.pid; setsid sleep 1000 & echo $! > /workspace/bg2.pid; echo started; wait`
		p, err := c.Spawn(ctx, shSpec(script), "parent")
		if err != nil {
			t.Fatal(err)
		}
		killAtEnd(t, c, p.PID)
		ex, err := c.Logs(ctx, p.PID, true)
		if err != nil {
			t.Fatal(err)
		}
		readLogs(t, ex, "started\n")
		var kids []int
		for _, f := range []string{"bg1.pid", "bg2.pid"} {
			n, err := strconv.Atoi(strings.TrimSpace(runSh(t, inst, "cat /workspace/"+f)))
			if err != nil {
				t.Fatal(err)
			}
			if !alive(t, inst, n) {
				t.Fatalf("child %d is not running before the kill", n)
			}
			kids = append(kids, n)
		}
		if err := c.SignalProcess(ctx, p.PID, int(syscall.SIGKILL)); err != nil {
			t.Fatal(err)
		}
		if res := waitExit(t, c, p.PID); res.Signal != int(syscall.SIGKILL) || res.ExitCode != 137 {
			t.Fatalf("after SIGKILL: %+v", res)
		}
		for _, n := range kids {
			if !gone(t, inst, n) {
				t.Fatalf("child %d outlived its killed parent", n)
			}
		}
	})

	t.Run("survives_executions_and_concurrent_spawns", func(t *testing.T) {
		ctx := testCtx(t)
		var wg sync.WaitGroup
		pids := make([]int, 3)
		errs := make([]error, 3)
		for i := range pids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p, err := c.Spawn(ctx, shSpec(fmt.Sprintf("echo ready%d; exec sleep 1000", i)), fmt.Sprintf("sleeper%d", i))
				if err == nil {
					pids[i] = p.PID
					killAtEnd(t, c, p.PID)
				}
				errs[i] = err
			}()
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
		if pids[0] == pids[1] || pids[1] == pids[2] || pids[0] == pids[2] {
			t.Fatalf("pids %v", pids)
		}
		for i := 0; i < 3; i++ {
			if out := runSh(t, inst, "echo exec; sleep 0.01 & true"); out != "exec\n" {
				t.Fatalf("execution printed %q", out)
			}
		}
		ps, err := c.Processes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		running := map[int]bool{}
		for _, p := range ps {
			running[p.PID] = p.Running
		}
		for i, pid := range pids {
			if !running[pid] || !alive(t, inst, pid) {
				t.Fatalf("sleeper %d (pid %d) did not survive the executions", i, pid)
			}
			ex, err := c.Logs(ctx, pid, true)
			if err != nil {
				t.Fatal(err)
			}
			readLogs(t, ex, fmt.Sprintf("ready%d\n", i))
		}
		st, err := c.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.BackgroundProcesses != 3 {
			t.Fatalf("stats count %d background processes, want 3", st.BackgroundProcesses)
		}
		for _, pid := range pids {
			if err := c.SignalProcess(ctx, pid, int(syscall.SIGKILL)); err != nil {
				t.Fatal(err)
			}
			waitExit(t, c, pid)
		}
		if st, err := c.Stats(ctx); err != nil || st.BackgroundProcesses != 0 {
			t.Fatalf("after the kills: %+v, %v", st, err)
		}
	})

	t.Run("http_server", func(t *testing.T) {
		ctx := testCtx(t)
		p, err := c.Spawn(ctx, &agent.ExecSpec{Argv: []string{"/usr/bin/python3", "-m", "http.server", "8000"}, Env: testEnv, Dir: "/workspace"}, "web")
		if err != nil {
			t.Fatal(err)
		}
		killAtEnd(t, c, p.PID)
		runSh(t, inst, "echo served > /workspace/hello.txt")
		out := runSh(t, inst, `/usr/bin/python3 -c '
import time, urllib.request
for _ in range(100):
    try:
        print(urllib.request.urlopen("http://127.0.0.1:8000/hello.txt").read().decode(), end="")
        break
    except OSError:
        time.sleep(0.05)
'`)
		if out != "served\n" {
			t.Fatalf("fetched %q", out)
		}
		if err := c.SignalProcess(ctx, p.PID, int(syscall.SIGINT)); err != nil {
			t.Fatal(err)
		}
		res := waitExit(t, c, p.PID)
		ex, err := c.Logs(ctx, p.PID, false)
		if err != nil {
			t.Fatal(err)
		}
		if l := readLogs(t, ex, ""); !strings.Contains(l.stream(2), "GET /hello.txt") {
			t.Fatalf("server log %q (result %+v)", l.stream(2), res)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		ctx := testCtx(t)
		spec := shSpec("sleep 1000")
		spec.TimeoutMS = 200
		p, err := c.Spawn(ctx, spec, "")
		if err != nil {
			t.Fatal(err)
		}
		if res := waitExit(t, c, p.PID); !res.TimedOut || res.Signal != int(syscall.SIGKILL) {
			t.Fatalf("after its timeout: %+v", res)
		}
	})

	t.Run("exited_table_bound", func(t *testing.T) {
		ctx := testCtx(t)
		var first int
		for i := 0; i < 105; i++ {
			p, err := c.Spawn(ctx, shSpec("echo $$"), "")
			if err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				first = p.PID
			}
			if res := waitExit(t, c, p.PID); res.ExitCode != 0 {
				t.Fatalf("spawn %d: %+v", i, res)
			}
		}
		ps, err := c.Processes(ctx)
		if err != nil {
			t.Fatal(err)
		}
		exited := 0
		for _, p := range ps {
			if !p.Running {
				exited++
			}
		}
		if exited != 100 {
			t.Fatalf("the table keeps %d exited processes, want 100", exited)
		}
		_, err = c.Process(ctx, first)
		wantCode(t, err, cove.CodeNotFound)
		if ps[len(ps)-1].Result == nil || ps[len(ps)-1].StartedAt.Before(ps[0].StartedAt) {
			t.Fatalf("listing not oldest first: %+v ... %+v", ps[0], ps[len(ps)-1])
		}
	})

	t.Run("errors", func(t *testing.T) {
		ctx := testCtx(t)
		_, err := c.Process(ctx, 99999)
		wantCode(t, err, cove.CodeNotFound)
		_, err = c.Logs(ctx, 99999, true)
		wantCode(t, err, cove.CodeNotFound)
		wantCode(t, c.WriteStdin(ctx, 99999, []byte("x"), false), cove.CodeNotFound)
		wantCode(t, c.SignalProcess(ctx, 99999, 15), cove.CodeNotFound)
		wantCode(t, c.SignalProcess(ctx, 99999, 0), cove.CodeInvalid)
		wantCode(t, c.SignalProcess(ctx, 99999, 65), cove.CodeInvalid)
		_, err = c.Spawn(ctx, &agent.ExecSpec{Argv: []string{"no-such-program"}, Env: testEnv, Dir: "/workspace"}, "")
		wantCode(t, err, cove.CodeInvalid)
		if !strings.Contains(cove.ErrorMessage(err), "command not found") {
			t.Fatalf("spawn error %q", cove.ErrorMessage(err))
		}
		_, err = c.Spawn(ctx, &agent.ExecSpec{Env: testEnv, Dir: "/workspace"}, "")
		wantCode(t, err, cove.CodeInvalid)
	})
}

// termReader collects a terminal's output in the background.
type termReader struct {
	mu   sync.Mutex
	buf  []byte
	off  int // what expect has consumed
	err  error
	more chan struct{}
}

func readTerminal(p *agent.PTY) *termReader {
	r := &termReader{more: make(chan struct{}, 1)}
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := p.Read(b)
			r.mu.Lock()
			r.buf = append(r.buf, b[:n]...)
			r.err = err
			r.mu.Unlock()
			select {
			case r.more <- struct{}{}:
			default:
			}
			if err != nil {
				return
			}
		}
	}()
	return r
}

// expect waits until the output after the last match matches re and
// returns the match.
func (r *termReader) expect(t *testing.T, re string) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.After(20 * time.Second)
	for {
		r.mu.Lock()
		loc := rx.FindIndex(r.buf[r.off:])
		var m string
		if loc != nil {
			m = string(r.buf[r.off+loc[0] : r.off+loc[1]])
			r.off += loc[1]
		}
		err, all := r.err, string(r.buf)
		r.mu.Unlock()
		if loc != nil {
			return m
		}
		if err != nil {
			t.Fatalf("terminal ended (%v) before %q; output %q", err, re, all)
		}
		select {
		case <-r.more:
		case <-deadline:
			t.Fatalf("no %q in terminal output %q", re, all)
		}
	}
}

func TestPTY(t *testing.T) {
	ptyOn(t, newProcessSandbox(t))
}

func ptyOn(t *testing.T, inst runtime.Instance) {
	c := inst.Agent()

	t.Run("shell", func(t *testing.T) {
		p, err := c.OpenPTY(testCtx(t), &agent.PTYSpec{Env: testEnv})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		r := readTerminal(p)
		write := func(s string) {
			if _, err := p.Write([]byte(s)); err != nil {
				t.Fatal(err)
			}
		}
		write("echo $((6*7))\n")
		r.expect(t, `[\r\n]42\r\n`)
		write("echo $TERM $0\n")
		r.expect(t, `[\r\n]xterm-256color -?bash\r\n`)
		write("stty size\n")
		r.expect(t, `[\r\n]24 80\r\n`)
		if err := p.Resize(100, 40); err != nil {
			t.Fatal(err)
		}
		write("stty size\n")
		r.expect(t, `[\r\n]40 100\r\n`)
		write("tty; id -u; stat -c %u $(tty); pwd\n")
		r.expect(t, `[\r\n]/dev/pts/\d+\r\n1000\r\n1000\r\n/workspace\r\n`)
		write("exit\n")
		res, err := p.Wait()
		if err != nil {
			t.Fatal(err)
		}
		if res.ExitCode != 0 || res.Signal != 0 || res.Canceled {
			t.Fatalf("shell ended with %+v", res)
		}
	})

	t.Run("exit_code_and_eof", func(t *testing.T) {
		p, err := c.OpenPTY(testCtx(t), &agent.PTYSpec{Argv: []string{"/bin/sh", "-c", "printf 'done\\n'; exit 3"}, Env: testEnv, Cols: 20, Rows: 5})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		out, err := io.ReadAll(p)
		if err != nil {
			t.Fatal(err)
		}
		if string(out) != "done\r\n" {
			t.Fatalf("output %q", out)
		}
		res, err := p.Wait()
		if err != nil || res.ExitCode != 3 {
			t.Fatalf("result %+v, %v", res, err)
		}
	})

	t.Run("close_kills", func(t *testing.T) {
		p, err := c.OpenPTY(testCtx(t), &agent.PTYSpec{Env: testEnv})
		if err != nil {
			t.Fatal(err)
		}
		r := readTerminal(p)
		if _, err := p.Write([]byte("sleep 1000 & echo child=$!\n")); err != nil {
			t.Fatal(err)
		}
		m := r.expect(t, `child=\d+`)
		child, _ := strconv.Atoi(strings.TrimPrefix(m, "child="))
		if !alive(t, inst, p.PID()) || !alive(t, inst, child) {
			t.Fatal("shell or its child not running")
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		res, err := p.Wait()
		if err != nil {
			t.Fatal(err)
		}
		if !res.Canceled || res.Signal != int(syscall.SIGKILL) {
			t.Fatalf("closed terminal's program ended with %+v", res)
		}
		for _, pid := range []int{p.PID(), child} {
			if !gone(t, inst, pid) {
				t.Fatalf("process %d outlived its closed terminal", pid)
			}
		}
	})

	t.Run("cancel_kills", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		p, err := c.OpenPTY(ctx, &agent.PTYSpec{Argv: []string{"sleep", "1000"}, Env: testEnv})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		cancel()
		res, err := p.Wait()
		if err == nil && !res.Canceled {
			t.Fatalf("cancelled terminal's program ended with %+v", res)
		}
		if !gone(t, inst, p.PID()) {
			t.Fatalf("process %d outlived its cancelled terminal", p.PID())
		}
	})

	t.Run("errors", func(t *testing.T) {
		ctx := testCtx(t)
		_, err := c.OpenPTY(ctx, &agent.PTYSpec{Argv: []string{"no-such-shell"}, Env: testEnv})
		wantCode(t, err, cove.CodeInvalid)
		_, err = c.OpenPTY(ctx, &agent.PTYSpec{Env: testEnv, Cols: -1})
		wantCode(t, err, cove.CodeInvalid)
		// A program that cannot start leaves no cgroup behind: the sandbox
		// still runs terminals.
		p, err := c.OpenPTY(ctx, &agent.PTYSpec{Argv: []string{"true"}, Env: testEnv})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		if res, err := p.Wait(); err != nil || res.ExitCode != 0 {
			t.Fatalf("true on a terminal: %+v, %v", res, err)
		}
	})
}
