package service

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cove-sandbox/cove"
)

// TestStopExecution stops running executions by their ids: the stream
// still ends with the result, killed, with what the program used; only
// the key that started an execution (or an admin) can stop it.
func TestStopExecution(t *testing.T) {
	svc, _ := newTestService(t)
	ctx := context.Background()
	a, err := svc.CreateKey(ctx, cove.KeySpec{Name: "a"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := svc.CreateKey(ctx, cove.KeySpec{Name: "b"})
	if err != nil {
		t.Fatal(err)
	}
	ctxA, ctxB := cove.WithKey(ctx, &a.Key), cove.WithKey(ctx, &b.Key)
	sb, err := svc.CreateSandbox(ctxA, cove.SandboxSpec{})
	if err != nil {
		t.Fatal(err)
	}
	// A program that spins (so that it uses CPU time) after its first
	// line, and would run for 30 s.
	spin := "print('started', flush=True)\nimport time\nend = time.time() + 30\nwhile time.time() < end:\n    pass"

	stopRunning := func(t *testing.T, st cove.Stream, stopCtx context.Context) *cove.ExecResult {
		t.Helper()
		defer st.Close()
		ev, err := st.Next()
		if err != nil || string(ev.Data) != "started\n" {
			t.Fatalf("first event %+v %v", ev, err)
		}
		id := cove.ExecutionID(st)
		if id == "" {
			t.Fatal("a running execution has no id")
		}
		if err := svc.StopExecution(ctxB, id); cove.ErrorCode(err) != cove.CodeNotFound {
			t.Fatalf("another key stopping the execution: %v, want not_found", err)
		}
		time.Sleep(200 * time.Millisecond) // some CPU time to measure
		start := time.Now()
		if err := svc.StopExecution(stopCtx, id); err != nil {
			t.Fatal(err)
		}
		res, err := cove.Collect(st)
		if err != nil {
			t.Fatalf("reading the stopped execution: %v", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("the execution ended %v after it was stopped", d)
		}
		if err := svc.StopExecution(stopCtx, id); cove.ErrorCode(err) != cove.CodeNotFound {
			t.Fatalf("stopping an execution that has ended: %v, want not_found", err)
		}
		return res
	}
	check := func(t *testing.T, res *cove.ExecResult) {
		t.Helper()
		if res.Verdict != cove.VerdictKilled || res.Message != "killed: stopped on request" {
			t.Fatalf("result %+v, want killed, stopped on request", res)
		}
		if res.CPUMS == 0 || res.PeakMemoryBytes == 0 || res.WallMS < 200 {
			t.Fatalf("the stopped execution's figures were not measured: %+v", res)
		}
	}

	t.Run("code", func(t *testing.T) {
		st, err := svc.RunCode(ctxA, sb.ID, cove.CodeRequest{Language: "python", Code: spin})
		if err != nil {
			t.Fatal(err)
		}
		check(t, stopRunning(t, st, ctxA))
		// The sandbox lives on, and runs the next execution.
		ps, err := svc.Exec(ctxA, sb.ID, cove.ExecRequest{Shell: "ps -eo args"})
		if err != nil {
			t.Fatal(err)
		}
		res, err := cove.Collect(ps)
		if err != nil || res.Verdict != cove.VerdictOK || strings.Contains(res.Stdout, "python") {
			t.Fatalf("after the stop: %+v %v", res, err)
		}
	})
	t.Run("run, by an admin", func(t *testing.T) {
		st, err := svc.Run(ctxA, cove.RunRequest{CodeRequest: cove.CodeRequest{Language: "python", Code: spin}})
		if err != nil {
			t.Fatal(err)
		}
		// A context without a key is the local administrator's.
		check(t, stopRunning(t, st, ctx))
	})
	t.Run("unknown id", func(t *testing.T) {
		err := svc.StopExecution(ctxA, "x0123")
		if cove.ErrorCode(err) != cove.CodeNotFound || !strings.Contains(err.Error(), "Cove-Execution-Id") {
			t.Fatalf("stopping an unknown execution: %v", err)
		}
	})
}
