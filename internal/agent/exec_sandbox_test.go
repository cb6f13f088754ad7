package agent_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/agent"
)

// endless is standard input that never ends.
type endless struct{}

func (endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = 'x'
	}
	return len(p), nil
}

// TestSignalsPassStandardInputThatIsNotRead: a program that reads none of
// the standard input it is sent holds up the execution's stream, but not
// a signal, nor its caller giving up: both reach it at once, not at its
// timeout.
func TestSignalsPassStandardInputThatIsNotRead(t *testing.T) {
	c, ctx := newSandbox(t, "sigstdin", cove.DefaultLimits())
	// started waits for the program's first line: by then the host has
	// sent standard input for a while.
	start := func(t *testing.T, ctx context.Context) *agent.Exec {
		t.Helper()
		ex, err := c.Start(ctx, &agent.ExecSpec{Argv: []string{"/bin/sh", "-c", "echo started; exec sleep 60"}, Env: pyEnv, Dir: "/workspace", TimeoutMS: 60000}, endless{})
		if err != nil {
			t.Fatal(err)
		}
		out, err := ex.Next()
		if err != nil || string(out.Data) != "started\n" {
			t.Fatalf("first output %+v %v", out, err)
		}
		time.Sleep(300 * time.Millisecond) // the pipe and the stream's window fill
		return ex
	}
	// sleepers counts the programs still running in the sandbox.
	sleepers := func(t *testing.T) int {
		t.Helper()
		ex, err := c.Start(ctx, &agent.ExecSpec{Argv: []string{"/bin/sh", "-c", "ps -eo args"}, Env: pyEnv, Dir: "/workspace", TimeoutMS: 10000}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ex.Close()
		var out strings.Builder
		for {
			o, err := ex.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			out.Write(o.Data)
		}
		return strings.Count(out.String(), "sleep 60")
	}

	t.Run("signal", func(t *testing.T) {
		ex := start(t, ctx)
		defer ex.Close()
		begin := time.Now()
		if err := ex.Signal(int(syscall.SIGKILL)); err != nil {
			t.Fatal(err)
		}
		var res *agent.ExecResult
		for res == nil {
			o, err := ex.Next()
			if err != nil {
				t.Fatalf("reading the killed program's stream: %v", err)
			}
			res = o.Result
		}
		if d := time.Since(begin); d > 5*time.Second || res.Signal != int(syscall.SIGKILL) {
			t.Fatalf("the program ended %v after SIGKILL, with %+v", d, res)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		ex := start(t, cctx)
		defer ex.Close()
		cancel()
		for deadline := time.Now().Add(5 * time.Second); sleepers(t) > 0; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the program still runs 5 s after its caller gave up")
			}
		}
	})
	t.Run("closed", func(t *testing.T) {
		ex := start(t, ctx)
		begin := time.Now()
		ex.Close()
		if d := time.Since(begin); d > 5*time.Second {
			t.Fatalf("closing the stream took %v", d)
		}
		for deadline := time.Now().Add(5 * time.Second); sleepers(t) > 0; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("the program still runs 5 s after its stream was closed")
			}
		}
	})
}

// TestExecStartFailureStatus: a program that cannot be started exits as a
// shell says: 126 when it is there but cannot be executed, 127 when it is
// not found.
func TestExecStartFailureStatus(t *testing.T) {
	c, ctx := newSandbox(t, "execstatus", cove.DefaultLimits())
	sh(t, ctx, c, "printf '#!/bin/sh\\necho hi\\n' > s.sh && chmod 0644 s.sh && mkdir -p d && printf '\\001\\002' > junk && chmod 0755 junk")
	for _, tc := range []struct {
		argv0 string
		want  int
		text  string
	}{
		{"./s.sh", 126, "permission denied"},
		{"./d", 126, "permission denied"},
		{"./junk", 126, "exec format error"},
		{"./absent.sh", 127, "no such file or directory"},
		{"no-such-command", 127, "command not found"},
	} {
		ex, err := c.Start(ctx, &agent.ExecSpec{Argv: []string{tc.argv0}, Env: pyEnv, Dir: "/workspace", TimeoutMS: 10000}, nil)
		if err != nil {
			t.Fatal(err)
		}
		var res *agent.ExecResult
		for res == nil {
			o, err := ex.Next()
			if err != nil {
				t.Fatalf("%s: %v", tc.argv0, err)
			}
			res = o.Result
		}
		ex.Close()
		if res.ExitCode != tc.want || !strings.Contains(res.StartError, tc.text) {
			t.Errorf("%s: exit %d, %q; want %d, %q", tc.argv0, res.ExitCode, res.StartError, tc.want, tc.text)
		}
	}
}

// TestSignalRightAfterStart sends a signal, and a cancellation, the moment
// an execution is started, before its program can have run: the program
// still gets it once it runs (the signal's stream may be served before
// the execution's own), rather than the stop being taken for one that
// came too late and the program running to its end.
func TestSignalRightAfterStart(t *testing.T) {
	c, ctx := newSandbox(t, "sigearly", cove.DefaultLimits())
	result := func(t *testing.T, ex *agent.Exec) *agent.ExecResult {
		t.Helper()
		for {
			o, err := ex.Next()
			if err != nil {
				t.Fatalf("reading the stream: %v", err)
			}
			if o.Result != nil {
				return o.Result
			}
		}
	}
	for i := 0; i < 20; i++ {
		begin := time.Now()
		ex, err := c.Start(ctx, &agent.ExecSpec{Argv: []string{"sleep", "30"}, Env: pyEnv, Dir: "/workspace", TimeoutMS: 60000}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := ex.Signal(int(syscall.SIGKILL)); err != nil {
			t.Fatal(err)
		}
		res := result(t, ex)
		ex.Close()
		if d := time.Since(begin); d > 10*time.Second || res.Signal != int(syscall.SIGKILL) {
			t.Fatalf("round %d: the program ended %v after a SIGKILL sent as it started, with %+v", i, d, res)
		}
	}
}
