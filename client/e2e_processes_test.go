package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/cove-sandbox/cove"
)

func TestProcesses(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	sb := e.sandbox(e.admin, cove.SandboxSpec{})
	// An echo server on stdin.
	p, err := e.admin.StartProcess(ctx, sb.ID, cove.ProcessRequest{
		Shell: `echo ready; while read line; do echo "got $line"; echo "err $line" >&2; done; echo bye`,
		Name:  "echo", Env: map[string]string{"X": "1"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if p.PID <= 0 || p.State != cove.ProcessRunning || p.Name != "echo" || len(p.Cmd) == 0 || p.StartedAt.IsZero() {
		t.Fatalf("started %+v", p)
	}
	sleeper, err := e.admin.StartProcess(ctx, sb.ID, cove.ProcessRequest{Cmd: []string{"sleep", "300"}})
	if err != nil {
		t.Fatal(err)
	}
	ps, err := e.admin.ListProcesses(ctx, sb.ID)
	if err != nil || len(ps) != 2 {
		t.Fatalf("list: %+v, %v", ps, err)
	}
	got, err := e.admin.GetProcess(ctx, sb.ID, p.PID)
	if err != nil || got.PID != p.PID || got.State != cove.ProcessRunning {
		t.Fatalf("get: %+v, %v", got, err)
	}
	_, err = e.admin.GetProcess(ctx, sb.ID, 99999)
	wantCode(t, err, cove.CodeNotFound)

	// Follow its logs while writing to it.
	logs, err := e.admin.ProcessLogs(ctx, sb.ID, p.PID, true)
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	if err := e.admin.WriteProcessStdin(ctx, sb.ID, p.PID, []byte("hello\n"), false); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	for !strings.Contains(out.String(), "got hello\n") {
		ev, err := logs.Next()
		if err != nil {
			t.Fatalf("logs so far %q: %v", out.String(), err)
		}
		if ev.Type == cove.EventStdout {
			out.Write(ev.Data)
		}
	}
	if !strings.HasPrefix(out.String(), "ready\n") {
		t.Fatalf("logs %q", out.String())
	}
	if err := e.admin.WriteProcessStdin(ctx, sb.ID, p.PID, []byte("world\n"), true); err != nil {
		t.Fatal(err)
	}
	var res *cove.ExecResult
	for {
		ev, err := logs.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		switch ev.Type {
		case cove.EventStdout:
			out.Write(ev.Data)
		case cove.EventExit:
			res = ev.Result
		}
	}
	if res == nil || res.Verdict != cove.VerdictOK || out.String() != "ready\ngot hello\ngot world\nbye\n" {
		t.Fatalf("followed logs %q, result %+v", out.String(), res)
	}
	got, err = e.admin.GetProcess(ctx, sb.ID, p.PID)
	if err != nil || got.State != cove.ProcessExited || got.Result == nil || got.Result.ExitCode != 0 {
		t.Fatalf("after exit: %+v, %v", got, err)
	}
	wantCode(t, e.admin.WriteProcessStdin(ctx, sb.ID, p.PID, []byte("late"), false), cove.CodeConflict)

	// Logs without follow, as plain JSON.
	resp := e.do("GET", "/v1/sandboxes/"+sb.ID+"/processes/"+itoa(p.PID)+"/logs", e.adminKey, nil)
	var plain struct {
		Stdout, Stderr string
		Result         *struct{ Verdict string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&plain); err != nil || resp.StatusCode != 200 {
		t.Fatalf("plain logs: %d %v", resp.StatusCode, err)
	}
	if plain.Stdout != out.String() || plain.Stderr != "err hello\nerr world\n" || plain.Result == nil || plain.Result.Verdict != "ok" {
		t.Fatalf("plain logs %+v", plain)
	}
	// Logs of a running process without follow end after what is kept.
	st, err := e.admin.ProcessLogs(ctx, sb.ID, sleeper.PID, false)
	if err != nil {
		t.Fatal(err)
	}
	if ev, err := st.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("logs of a silent process: %+v, %v", ev, err)
	}
	st.Close()

	// Signals: by name, then DELETE kills.
	wantCode(t, e.admin.SignalProcess(ctx, sb.ID, sleeper.PID, "SIGNOPE"), cove.CodeInvalid)
	if err := e.admin.SignalProcess(ctx, sb.ID, sleeper.PID, "TERM"); err != nil {
		t.Fatal(err)
	}
	waitExited(t, e, sb.ID, sleeper.PID, "SIGTERM")
	// An exited process is not signalled: a conflict says so, through the
	// SDK and over REST.
	exitedMsg := "process " + itoa(sleeper.PID) + " has already exited (killed by SIGTERM); nothing was signalled"
	err = e.admin.SignalProcess(ctx, sb.ID, sleeper.PID, "TERM")
	wantCode(t, err, cove.CodeConflict)
	if cove.ErrorMessage(err) != exitedMsg {
		t.Fatalf("signalling an exited process: %q, want %q", cove.ErrorMessage(err), exitedMsg)
	}
	resp = e.do("POST", "/v1/sandboxes/"+sb.ID+"/processes/"+itoa(sleeper.PID)+"/signal", e.adminKey, []byte(`{"signal":"KILL"}`), "Content-Type", "application/json")
	if msg := apiError(t, resp, 409, cove.CodeConflict); msg != exitedMsg {
		t.Fatalf("POST signal to an exited process: %q, want %q", msg, exitedMsg)
	}
	killed, err := e.admin.StartProcess(ctx, sb.ID, cove.ProcessRequest{Shell: "trap '' TERM; sleep 300"})
	if err != nil {
		t.Fatal(err)
	}
	resp = e.do("DELETE", "/v1/sandboxes/"+sb.ID+"/processes/"+itoa(killed.PID), e.adminKey, nil)
	if resp.StatusCode != 204 {
		t.Fatalf("DELETE process: %d", resp.StatusCode)
	}
	waitExited(t, e, sb.ID, killed.PID, "SIGKILL")
	resp = e.do("DELETE", "/v1/sandboxes/"+sb.ID+"/processes/"+itoa(killed.PID), e.adminKey, nil)
	if msg, want := apiError(t, resp, 409, cove.CodeConflict), "process "+itoa(killed.PID)+" has already exited (killed by SIGKILL); nothing was signalled"; msg != want {
		t.Fatalf("DELETE an exited process: %q, want %q", msg, want)
	}

	resp = e.do("GET", "/v1/sandboxes/"+sb.ID+"/processes/abc", e.adminKey, nil)
	apiError(t, resp, 400, cove.CodeInvalid)
}

// TestWaitProcess waits for background processes through the SDK and
// over REST: until one exits, at once for one that has exited, and, over
// REST, up to a timeout, after which the process is still running.
func TestWaitProcess(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	sb := e.sandbox(e.admin, cove.SandboxSpec{})
	p, err := e.admin.StartProcess(ctx, sb.ID, cove.ProcessRequest{Name: "slow", Shell: "echo start; sleep 0.5; echo done; exit 4"})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	got, err := e.admin.WaitProcess(ctx, sb.ID, p.PID)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("WaitProcess returned after %v, before the process exited", d)
	}
	if got.PID != p.PID || got.Name != "slow" || got.State != cove.ProcessExited || got.Result == nil ||
		got.Result.Verdict != cove.VerdictExitNonzero || got.Result.ExitCode != 4 {
		t.Fatalf("WaitProcess: %+v, result %+v; want exited with status 4", got, got.Result)
	}
	again, err := e.admin.WaitProcess(ctx, sb.ID, p.PID)
	if err != nil || again.Result == nil || again.Result.ExitCode != 4 {
		t.Fatalf("WaitProcess of an exited process: %+v, %v", again, err)
	}

	sleeper, err := e.admin.StartProcess(ctx, sb.ID, cove.ProcessRequest{Cmd: []string{"sleep", "300"}})
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if _, err := e.admin.WaitProcess(short, sb.ID, sleeper.PID); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitProcess past its deadline: %v, want the context's error", err)
	}
	_, err = e.admin.WaitProcess(ctx, sb.ID, 99999)
	wantCode(t, err, cove.CodeNotFound)
	_, err = e.admin.WaitProcess(ctx, "sb-nope", sleeper.PID)
	wantCode(t, err, cove.CodeNotFound)

	// Over REST, the timeout passes first: the process as it is.
	path := "/v1/sandboxes/" + sb.ID + "/processes/" + itoa(sleeper.PID) + "/wait"
	start = time.Now()
	resp := e.do("POST", path+"?timeout=0.3", e.adminKey, nil)
	var w struct {
		PID    int
		State  string
		Result *struct{ Verdict string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&w); err != nil || resp.StatusCode != 200 {
		t.Fatalf("wait with a timeout: %d %v", resp.StatusCode, err)
	}
	if d := time.Since(start); w.PID != sleeper.PID || w.State != "running" || w.Result != nil || d < 300*time.Millisecond {
		t.Fatalf("wait with a timeout: %+v after %v, want running after 300ms", w, d)
	}
	resp = e.do("POST", path+"?timeout=1h", e.adminKey, nil)
	if msg := apiError(t, resp, 400, cove.CodeInvalid); !strings.Contains(msg, `timeout="1h"`) {
		t.Fatalf("wait for an hour: %q", msg)
	}
	// Killed while it is waited for, over REST: its result.
	go func() {
		time.Sleep(200 * time.Millisecond)
		e.admin.SignalProcess(ctx, sb.ID, sleeper.PID, "KILL")
	}()
	resp = e.do("POST", path, e.adminKey, nil)
	if err := json.NewDecoder(resp.Body).Decode(&w); err != nil || resp.StatusCode != 200 {
		t.Fatalf("wait: %d %v", resp.StatusCode, err)
	}
	if w.State != "exited" || w.Result == nil || w.Result.Verdict != "killed" {
		t.Fatalf("wait for a process killed meanwhile: %+v", w)
	}
}

func waitExited(t *testing.T, e *env, id string, pid int, signal string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctxT(t), 10*time.Second)
	defer cancel()
	for ctx.Err() == nil {
		p, err := e.admin.GetProcess(ctx, id, pid)
		if err != nil {
			t.Fatal(err)
		}
		if p.State == cove.ProcessExited {
			if p.Result == nil || p.Result.Signal != signal {
				t.Fatalf("exited with %+v, want signal %s", p.Result, signal)
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("process %d did not exit", pid)
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func TestPTY(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	sb := e.sandbox(e.admin, cove.SandboxSpec{})
	t.Run("shell", func(t *testing.T) {
		p, err := e.admin.OpenPTY(ctx, sb.ID, cove.PTYRequest{Cmd: []string{"/bin/sh"}, Cols: 80, Rows: 24, Env: map[string]string{"PS1": "$ "}})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		if err := p.Resize(100, 40); err != nil {
			t.Fatal(err)
		}
		io.WriteString(p, "stty size; echo tty-$((40+2)); exit 7\n")
		out, err := io.ReadAll(p)
		if err != nil {
			t.Fatalf("reading %q: %v", out, err)
		}
		if !strings.Contains(string(out), "40 100") || !strings.Contains(string(out), "tty-42") {
			t.Fatalf("terminal output %q", out)
		}
		res, err := p.Wait()
		if err != nil || res.ExitCode != 7 || res.Verdict != cove.VerdictExitNonzero {
			t.Fatalf("wait: %+v, %v", res, err)
		}
	})
	t.Run("close kills", func(t *testing.T) {
		p, err := e.admin.OpenPTY(ctx, sb.ID, cove.PTYRequest{Cmd: []string{"sh", "-c", "echo started; sleep 1.5; touch /workspace/pty-marker"}})
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64)
		if n, err := p.Read(buf); err != nil || !strings.Contains(string(buf[:n]), "started") {
			t.Fatalf("read %q, %v", buf[:n], err)
		}
		p.Close()
		time.Sleep(2 * time.Second)
		_, err = e.admin.StatFile(ctx, sb.ID, "pty-marker")
		wantCode(t, err, cove.CodeNotFound)
	})
	t.Run("errors", func(t *testing.T) {
		_, err := e.admin.OpenPTY(ctx, "nosuchsandbox", cove.PTYRequest{})
		wantCode(t, err, cove.CodeNotFound)
		_, err = e.admin.OpenPTY(ctx, sb.ID, cove.PTYRequest{Cols: 100000})
		wantCode(t, err, cove.CodeInvalid)
		_, err = e.client("wrong").OpenPTY(ctx, sb.ID, cove.PTYRequest{})
		wantCode(t, err, cove.CodeUnauthorized)
		// Not a WebSocket request.
		resp := e.do("GET", "/v1/sandboxes/"+sb.ID+"/pty", e.adminKey, nil)
		apiError(t, resp, 426, cove.CodeInvalid)
		// A page of another origin.
		resp = e.do("GET", "/v1/sandboxes/"+sb.ID+"/pty", e.adminKey, nil,
			"Connection", "Upgrade", "Upgrade", "websocket", "Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==", "Origin", "http://evil.example")
		apiError(t, resp, 403, cove.CodeForbidden)
	})
	t.Run("access token", func(t *testing.T) {
		// Browsers cannot set headers on a WebSocket: the key may come in
		// the query.
		resp := e.do("GET", "/v1/sandboxes/"+sb.ID+"/pty?cmd=true&access_token="+e.adminKey, "", nil,
			"Connection", "Upgrade", "Upgrade", "websocket", "Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		if resp.StatusCode != 101 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		// Only there.
		resp = e.do("GET", "/v1/sandboxes/"+sb.ID+"?access_token="+e.adminKey, "", nil)
		apiError(t, resp, 401, cove.CodeUnauthorized)
	})
}
