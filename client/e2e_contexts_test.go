package client_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cove-sandbox/cove"
)

func TestContexts(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	sb := e.sandbox(e.admin, cove.SandboxSpec{})
	c, err := e.admin.CreateContext(ctx, sb.ID, cove.ContextSpec{Language: "py", Env: map[string]string{"GREETING": "hi"}})
	if err != nil {
		t.Fatal(err)
	}
	if c.Language != "python" || c.SandboxID != sb.ID || c.Cwd != "/workspace" || c.Env["GREETING"] != "hi" {
		t.Fatalf("created %+v", c)
	}

	// The SDK streams events.
	st, err := e.admin.RunCell(ctx, sb.ID, c.ID, cove.CellRequest{Code: "import os\nprint(os.environ['GREETING'])\nn = 41\nn + 1"})
	if err != nil {
		t.Fatal(err)
	}
	run, err := cove.CollectCell(st)
	if err != nil {
		t.Fatal(err)
	}
	if run.Verdict != cove.VerdictOK || run.Stdout != "hi\n" || len(run.Outputs) != 2 || run.Outputs[1].Bundle["text/plain"] != "42" {
		t.Fatalf("run %+v outputs %+v", run.ExecResult, run.Outputs)
	}

	// Without a streaming Accept header the answer is the whole run.
	resp := e.do("POST", "/v1/sandboxes/"+sb.ID+"/contexts/"+c.ID+"/run", e.adminKey, []byte(`{"code":"1/0"}`), "Content-Type", "application/json")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	var whole struct {
		Verdict string `json:"verdict"`
		Outputs []struct {
			Type      string          `json:"type"`
			Exception *cove.CellError `json:"exception"`
		} `json:"outputs"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&whole); err != nil {
		t.Fatal(err)
	}
	if whole.Verdict != "error" || len(whole.Outputs) != 1 || whole.Outputs[0].Type != "exception" || whole.Outputs[0].Exception.Name != "ZeroDivisionError" || whole.Outputs[0].Exception.Line != 1 {
		t.Fatalf("answer %+v", whole)
	}

	// SSE carries the same events.
	resp = e.do("POST", "/v1/sandboxes/"+sb.ID+"/contexts/"+c.ID+"/run", e.adminKey, []byte(`{"code":"n"}`), "Content-Type", "application/json", "Accept", "text/event-stream")
	sc := bufio.NewScanner(resp.Body)
	var events []string
	for sc.Scan() {
		if name, ok := strings.CutPrefix(sc.Text(), "event: "); ok {
			events = append(events, name)
		}
	}
	if strings.Join(events, ",") != "result,exit" {
		t.Fatalf("SSE events %v", events)
	}

	// Interrupt a running cell through the API; the state survives.
	long, err := e.admin.RunCell(ctx, sb.ID, c.ID, cove.CellRequest{Code: "import time\nprint('go', flush=True)\ntime.sleep(60)"})
	if err != nil {
		t.Fatal(err)
	}
	if ev, err := long.Next(); err != nil || string(ev.Data) != "go\n" {
		t.Fatalf("first event %+v %v", ev, err)
	}
	busy, err := e.admin.GetContext(ctx, sb.ID, c.ID)
	if err != nil || !busy.Busy {
		t.Fatalf("a context running a cell: %+v %v", busy, err)
	}
	if err := e.admin.InterruptContext(ctx, sb.ID, c.ID); err != nil {
		t.Fatal(err)
	}
	run, err = cove.CollectCell(long)
	if err != nil || run.Verdict != cove.VerdictKilled {
		t.Fatalf("interrupted: %+v %v", run, err)
	}
	if run := collectCell(t, e.admin, sb.ID, c.ID, "n"); run.Outputs[0].Bundle["text/plain"] != "41" {
		t.Fatalf("after the interrupt: %+v", run.Outputs)
	}

	// Closing the stream interrupts the cell too.
	st, err = e.admin.RunCell(ctx, sb.ID, c.ID, cove.CellRequest{Code: "import time\nprint('go', flush=True)\ntime.sleep(60)"})
	if err != nil {
		t.Fatal(err)
	}
	st.Next()
	st.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := e.admin.GetContext(ctx, sb.ID, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Busy {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the cell still runs after its stream was closed")
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Restart loses the state.
	r, err := e.admin.RestartContext(ctx, sb.ID, c.ID)
	if err != nil || r.Restarts != 1 || r.Runs != 0 {
		t.Fatalf("restart: %+v %v", r, err)
	}
	if run := collectCell(t, e.admin, sb.ID, c.ID, "n"); run.Verdict != cove.VerdictError {
		t.Fatalf("state survived a restart: %+v", run)
	}

	js, err := e.admin.CreateContext(ctx, sb.ID, cove.ContextSpec{Language: "typescript", Cwd: "sub"})
	if !isCode(err, cove.CodeInvalid) || !strings.Contains(err.Error(), "/workspace/sub does not exist") {
		t.Fatalf("a context in a missing directory: %+v, %v", js, err)
	}
	if _, err := e.admin.MakeDir(ctx, sb.ID, "sub"); err != nil {
		t.Fatal(err)
	}
	js, err = e.admin.CreateContext(ctx, sb.ID, cove.ContextSpec{Language: "typescript", Cwd: "sub"})
	if err != nil {
		t.Fatal(err)
	}
	if run := collectCell(t, e.admin, sb.ID, js.ID, "const where: string = process.cwd()\nwhere"); run.Outputs[0].Bundle["text/plain"] != "'/workspace/sub'" {
		t.Fatalf("cwd %+v", run.Outputs)
	}
	list, err := e.admin.ListContexts(ctx, sb.ID)
	if err != nil || len(list) != 2 {
		t.Fatalf("list %+v %v", list, err)
	}
	if err := e.admin.DeleteContext(ctx, sb.ID, c.ID); err != nil {
		t.Fatal(err)
	}
	_, err = e.admin.GetContext(ctx, sb.ID, c.ID)
	wantCode(t, err, cove.CodeNotFound)

	// Another key sees neither the sandbox nor its contexts.
	other, _ := e.newKey(cove.Quota{})
	_, err = other.ListContexts(ctx, sb.ID)
	wantCode(t, err, cove.CodeNotFound)
	_, err = other.RunCell(ctx, sb.ID, js.ID, cove.CellRequest{Code: "1"})
	wantCode(t, err, cove.CodeNotFound)
}

func collectCell(t *testing.T, c cove.Service, id, cid, code string) *cove.CellRun {
	t.Helper()
	st, err := c.RunCell(context.Background(), id, cid, cove.CellRequest{Code: code})
	if err != nil {
		t.Fatal(err)
	}
	run, err := cove.CollectCell(st)
	if err != nil {
		t.Fatal(err)
	}
	return run
}
