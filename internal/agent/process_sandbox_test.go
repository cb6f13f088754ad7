package agent_test

import (
	"context"
	"errors"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/agent"
)

// TestSpawnNamesAMissingWorkingDirectory: a background process whose
// working directory is missing or a file is refused the way an execution
// is, naming the directory rather than the program.
func TestSpawnNamesAMissingWorkingDirectory(t *testing.T) {
	c, ctx := newSandbox(t, "spawncwd", cove.DefaultLimits())
	env := []string{"PATH=/usr/local/bin:/usr/bin:/bin"}
	if err := c.WriteFiles(ctx, []agent.File{{Path: "afile", Data: []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	for dir, want := range map[string]string{
		"/nope":            "working directory /nope: no such directory",
		"/workspace/afile": "working directory /workspace/afile: not a directory",
	} {
		_, err := c.Spawn(ctx, &agent.ExecSpec{Argv: []string{"sleep", "1"}, Env: env, Dir: dir}, "")
		wantError(t, "spawning in "+dir, err, cove.CodeInvalid)
		if got := cove.ErrorMessage(err); got != want {
			t.Errorf("spawning in %s: %q, want %q", dir, got, want)
		}
	}
	info, err := c.Spawn(ctx, &agent.ExecSpec{Argv: []string{"true"}, Env: env, Dir: "/workspace"}, "")
	if err != nil || info.PID == 0 {
		t.Fatalf("spawning in /workspace: %+v, %v", info, err)
	}
}

// TestWaitForABackgroundProcess: Wait returns once a background process
// has exited, with its description and result and none of its output (an
// output frame would fail it), at once for one that has already exited;
// cancelling it leaves the process running.
func TestWaitForABackgroundProcess(t *testing.T) {
	c, ctx := newSandbox(t, "spawnwait", cove.DefaultLimits())
	env := []string{"PATH=/usr/local/bin:/usr/bin:/bin"}
	spawn := func(script string) *agent.ProcessInfo {
		t.Helper()
		argv := []string{"/bin/sh", "-c", script}
		p, err := c.Spawn(ctx, &agent.ExecSpec{Argv: argv, Env: env, Dir: "/workspace"}, "waited")
		if err != nil {
			t.Fatalf("spawning %q: %v", script, err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c.SignalProcess(ctx, p.PID, int(syscall.SIGKILL))
		})
		return p
	}

	t.Run("until it exits", func(t *testing.T) {
		// It prints on both streams before and while it is waited for.
		p := spawn(`seq 1 20000; echo oops >&2; read line; echo "$line"; exit 3`)
		type waited struct {
			info *agent.ProcessInfo
			err  error
		}
		got := make(chan waited, 1)
		go func() {
			info, err := c.Wait(ctx, p.PID)
			got <- waited{info, err}
		}()
		select {
		case w := <-got:
			t.Fatalf("Wait returned before the process exited: %+v, %v", w.info, w.err)
		case <-time.After(300 * time.Millisecond):
		}
		if err := c.WriteStdin(ctx, p.PID, []byte("bye\n"), true); err != nil {
			t.Fatal(err)
		}
		w := <-got
		if w.err != nil {
			t.Fatalf("Wait: %v", w.err)
		}
		info := w.info
		if info.PID != p.PID || info.Name != "waited" || !slices.Equal(info.Argv, p.Argv) || info.Running || !info.StartedAt.Equal(p.StartedAt) {
			t.Errorf("Wait: %+v, want the exited process %+v", info, p)
		}
		if r := info.Result; r == nil || r.ExitCode != 3 || r.Signal != 0 || r.StdoutBytes != 108894+4 || r.StderrBytes != 5 {
			t.Errorf("result %+v, want exit status 3 after 108898 bytes of stdout and 5 of stderr", r)
		}

		// Once it has exited, Wait answers at once with the same.
		again, err := c.Wait(ctx, p.PID)
		if err != nil || again.Result == nil || *again.Result != *info.Result {
			t.Errorf("Wait again: %+v, %v, want %+v", again, err, info.Result)
		}
	})

	t.Run("killed", func(t *testing.T) {
		p := spawn(`exec sleep 600`)
		go func() {
			time.Sleep(200 * time.Millisecond)
			c.SignalProcess(ctx, p.PID, int(syscall.SIGKILL))
		}()
		info, err := c.Wait(ctx, p.PID)
		if err != nil || info.Result == nil || info.Result.Signal != int(syscall.SIGKILL) {
			t.Fatalf("Wait: %+v, %v, want a result killed by SIGKILL", info, err)
		}
	})

	t.Run("cancelled", func(t *testing.T) {
		p := spawn(`exec sleep 600`)
		short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		info, err := c.Wait(short, p.PID)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Wait past its deadline: %+v, %v, want the context's error", info, err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("Wait returned %v after its deadline passed", d)
		}
		now, err := c.Process(ctx, p.PID)
		if err != nil || !now.Running {
			t.Errorf("after a cancelled Wait: %+v, %v, want it still running", now, err)
		}
	})

	t.Run("unknown", func(t *testing.T) {
		_, err := c.Wait(ctx, 99999)
		wantError(t, "waiting for pid 99999", err, cove.CodeNotFound)
		_, err = c.Wait(ctx, 0)
		wantError(t, "waiting for pid 0", err, cove.CodeNotFound)
	})
}
