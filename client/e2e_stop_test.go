package client_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cove-sandbox/cove"
)

// TestStopExecution stops an execution through the API while its answer
// streams to another caller, which still reads the result.
func TestStopExecution(t *testing.T) {
	e := newEnv(t)
	c, _ := e.newKey(cove.Quota{})
	other, _ := e.newKey(cove.Quota{})
	sb := e.sandbox(c, cove.SandboxSpec{})
	spin := "echo started; while :; do :; done"

	// stop reads the first line of st, stops it by its id and returns its
	// result.
	stop := func(t *testing.T, st cove.Stream) *cove.ExecResult {
		t.Helper()
		defer st.Close()
		ev, err := st.Next()
		if err != nil || string(ev.Data) != "started\n" {
			t.Fatalf("first event %+v %v", ev, err)
		}
		id := cove.ExecutionID(st)
		if id == "" {
			t.Fatal("the answer names no execution (Cove-Execution-Id)")
		}
		wantCode(t, other.StopExecution(ctxT(t), id), cove.CodeNotFound)
		if err := c.StopExecution(ctxT(t), id); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		res, err := cove.Collect(st)
		if err != nil {
			t.Fatalf("reading the stopped execution: %v", err)
		}
		if res.Verdict != cove.VerdictKilled || res.Message != "killed: stopped on request" || res.PeakMemoryBytes == 0 {
			t.Fatalf("result %+v", res)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("the execution ended %v after it was stopped", d)
		}
		wantCode(t, c.StopExecution(ctxT(t), id), cove.CodeNotFound)
		return res
	}

	t.Run("exec", func(t *testing.T) {
		stop(t, must(c.Exec(ctxT(t), sb.ID, cove.ExecRequest{Shell: spin})))
	})
	t.Run("run with streamed stdin", func(t *testing.T) {
		pr, pw := io.Pipe()
		defer pw.Close()
		stop(t, must(c.Run(ctxT(t), cove.RunRequest{CodeRequest: cove.CodeRequest{Language: "bash", Code: spin, StdinReader: pr}})))
	})
	t.Run("JSON answer", func(t *testing.T) {
		// Its headers come with the result: no id of an execution that
		// has ended, which no stop could reach.
		path := "/v1/sandboxes/" + sb.ID + "/exec"
		resp := e.do("POST", path, e.adminKey, []byte(`{"shell":"true"}`))
		resp.Body.Close()
		if id := resp.Header.Get("Cove-Execution-Id"); resp.StatusCode != 200 || id != "" {
			t.Fatalf("JSON answer: status %d, Cove-Execution-Id %q; want none", resp.StatusCode, id)
		}
		resp = e.do("POST", path, e.adminKey, []byte(`{"shell":"true"}`), "Accept", "text/event-stream")
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if id := resp.Header.Get("Cove-Execution-Id"); resp.StatusCode != 200 || id == "" {
			t.Fatalf("SSE answer: status %d, Cove-Execution-Id %q; want one", resp.StatusCode, id)
		}
	})
	t.Run("behind standard input the program does not read", func(t *testing.T) {
		// By its first line the program has left a second's worth of
		// input unread: the pipe and every buffer on the way are full.
		stop(t, must(c.Exec(ctxT(t), sb.ID, cove.ExecRequest{Shell: "sleep 1; echo started; exec sleep 60", StdinReader: endlessStdin(t)})))
	})
	t.Run("unknown", func(t *testing.T) {
		resp := e.do("POST", "/v1/executions/xnothing/stop", e.adminKey, nil)
		if msg := apiError(t, resp, http.StatusNotFound, cove.CodeNotFound); !strings.Contains(msg, "Cove-Execution-Id") {
			t.Fatalf("message %q does not say where the id comes from", msg)
		}
	})
}
