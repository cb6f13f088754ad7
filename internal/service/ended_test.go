package service

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cove-sandbox/cove"
)

// TestExecEndsWithItsSandbox: an execution or a context's cell whose
// sandbox is stopped, deleted or reaches the end of its TTL ends with a
// result (verdict killed) that says why, not with an error about its
// agent being gone.
func TestExecEndsWithItsSandbox(t *testing.T) {
	svc, _ := newStoredService(t, Options{ReapInterval: 100 * time.Millisecond})
	ctx := context.Background()
	starts := map[string]func(id string) (cove.Stream, error){
		"exec": func(id string) (cove.Stream, error) {
			return svc.Exec(ctx, id, cove.ExecRequest{Shell: "echo started; sleep 30"})
		},
		"cell": func(id string) (cove.Stream, error) {
			c, err := svc.CreateContext(ctx, id, cove.ContextSpec{Language: "python"})
			if err != nil {
				return nil, err
			}
			return svc.RunCell(ctx, id, c.ID, cove.CellRequest{Code: "import time\nprint('started', flush=True)\ntime.sleep(30)"})
		},
	}
	for _, kind := range []string{"exec", "cell"} {
		for _, tc := range []struct {
			name string
			spec cove.SandboxSpec
			end  func(id string) error
			want string
		}{
			{"stop", cove.SandboxSpec{}, func(id string) error { _, err := svc.StopSandbox(ctx, id); return err }, "killed: the sandbox was stopped"},
			{"delete", cove.SandboxSpec{}, func(id string) error { return svc.DeleteSandbox(ctx, id) }, "killed: the sandbox was deleted"},
			{"ttl", cove.SandboxSpec{TTL: 3 * time.Second}, func(string) error { return nil }, "killed: the sandbox's TTL (3s) ended and it was deleted"},
		} {
			t.Run(kind+"/"+tc.name, func(t *testing.T) {
				sb, err := svc.CreateSandbox(ctx, tc.spec)
				if err != nil {
					t.Fatal(err)
				}
				st, err := starts[kind](sb.ID)
				if err != nil {
					t.Fatal(err)
				}
				defer st.Close()
				if ev, err := st.Next(); err != nil || string(ev.Data) != "started\n" {
					t.Fatalf("first event: %+v %v", ev, err)
				}
				got := make(chan outcome, 1)
				go func() {
					res, err := cove.Collect(st)
					got <- outcome{res, err}
				}()
				if err := tc.end(sb.ID); err != nil {
					t.Fatal(err)
				}
				expectKilled(t, got, tc.want)
			})
		}
	}
}

// TestProcessEndsWithItsSandbox: following a background process's output,
// or waiting for it, ends with its result (killed, saying why) when its
// sandbox is stopped or deleted, not with an error about the agent being
// gone.
func TestProcessEndsWithItsSandbox(t *testing.T) {
	svc, _ := newStoredService(t, Options{})
	ctx := context.Background()
	// Each way of watching a process returns, once it has begun, a channel
	// that gets the process's result.
	follow := func(t *testing.T, id string, pid int) <-chan outcome {
		st, err := svc.ProcessLogs(ctx, id, pid, true)
		if err != nil {
			t.Fatal(err)
		}
		if ev, err := st.Next(); err != nil || string(ev.Data) != "started\n" {
			st.Close()
			t.Fatalf("first event: %+v %v", ev, err)
		}
		got := make(chan outcome, 1)
		go func() {
			res, err := cove.Collect(st)
			got <- outcome{res, err}
		}()
		return got
	}
	wait := func(t *testing.T, id string, pid int) <-chan outcome {
		got := make(chan outcome, 1)
		go func() {
			p, err := svc.WaitProcess(ctx, id, pid)
			if err == nil && (p.State != cove.ProcessExited || p.Result == nil) {
				err = fmt.Errorf("the wait returned the process %+v, not exited with a result", p)
			}
			if err != nil {
				got <- outcome{nil, err}
				return
			}
			got <- outcome{p.Result, nil}
		}()
		// The wait has begun once the sandbox counts it.
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			svc.mu.Lock()
			live := svc.live[id]
			svc.mu.Unlock()
			live.execMu.Lock()
			n := live.execs
			live.execMu.Unlock()
			if n > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the wait did not begin")
			}
		}
		return got
	}
	for _, how := range []struct {
		name  string
		watch func(t *testing.T, id string, pid int) <-chan outcome
	}{{"follow", follow}, {"wait", wait}} {
		for _, tc := range stopOrDelete(ctx, svc) {
			t.Run(how.name+"/"+tc.name, func(t *testing.T) {
				sb, err := svc.CreateSandbox(ctx, cove.SandboxSpec{})
				if err != nil {
					t.Fatal(err)
				}
				p, err := svc.StartProcess(ctx, sb.ID, cove.ProcessRequest{Shell: "echo started; sleep 30"})
				if err != nil {
					t.Fatal(err)
				}
				got := how.watch(t, sb.ID, p.PID)
				if err := tc.end(sb.ID); err != nil {
					t.Fatal(err)
				}
				expectKilled(t, got, tc.want)
			})
		}
	}
}

// outcome is how an execution or a watched process ended.
type outcome struct {
	res *cove.ExecResult
	err error
}

// sandboxEnding is a way of ending a sandbox while something runs in it,
// and what that something's result then says.
type sandboxEnding struct {
	name string
	end  func(id string) error
	want string
}

// stopOrDelete are the endings by a call: a stop and a deletion.
func stopOrDelete(ctx context.Context, svc *Service) []sandboxEnding {
	return []sandboxEnding{
		{"stop", func(id string) error { _, err := svc.StopSandbox(ctx, id); return err }, "killed: the sandbox was stopped"},
		{"delete", func(id string) error { return svc.DeleteSandbox(ctx, id) }, "killed: the sandbox was deleted"},
	}
}

// expectKilled waits for got: a result, killed, saying why (want), when
// its sandbox ends.
func expectKilled(t *testing.T, got <-chan outcome, want string) {
	t.Helper()
	select {
	case o := <-got:
		if o.err != nil {
			t.Fatalf("ended with an error: %v; want a result", o.err)
		}
		if o.res.Verdict != cove.VerdictKilled || o.res.Message != want {
			t.Errorf("result: verdict %s, message %q; want killed, %q", o.res.Verdict, o.res.Message, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("it did not end with its sandbox")
	}
}
