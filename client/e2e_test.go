package client_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cove-sandbox/cove"
)

func bytesReader(b []byte) io.Reader {
	if b == nil {
		return nil
	}
	return bytes.NewReader(b)
}

// isCode reports whether err is a *cove.Error of code.
func isCode(err error, code cove.Code) bool {
	return errors.Is(err, &cove.Error{Code: code})
}

// wantCode fails t unless err has code.
func wantCode(t *testing.T, err error, code cove.Code) {
	t.Helper()
	if !isCode(err, code) {
		t.Fatalf("got error %v (code %q), want code %q", err, cove.ErrorCode(err), code)
	}
}

// apiError decodes an error answer and checks its status and code.
func apiError(t *testing.T, resp *http.Response, status int, code cove.Code) string {
	t.Helper()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != status {
		t.Fatalf("%s %s: status %d, want %d (body %s)", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, status, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("error answer has Content-Type %q (body %s)", ct, b)
	}
	var body struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("error answer is not JSON: %s", b)
	}
	if body.Error.Code != string(code) || body.Error.Message == "" {
		t.Fatalf("error answer %s, want code %q and a message", b, code)
	}
	return body.Error.Message
}

// collect returns a function that runs a stream to its end:
// collect(t)(c.Exec(...)).
func collect(t *testing.T) func(cove.Stream, error) *cove.ExecResult {
	return func(st cove.Stream, err error) *cove.ExecResult {
		t.Helper()
		if err != nil {
			t.Fatalf("starting: %v", err)
		}
		res, err := cove.Collect(st)
		if err != nil {
			t.Fatalf("collecting: %v", err)
		}
		return res
	}
}

func TestHealthAndVersion(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	anon := e.client("")
	if err := anon.Health(ctx); err != nil {
		t.Fatalf("health without a key: %v", err)
	}
	_, err := anon.Version(ctx)
	wantCode(t, err, cove.CodeUnauthorized)
	v, err := e.admin.Version(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v.Version != cove.Version || v.Backend != "native" || !slices.Contains(v.Languages, "python") {
		t.Fatalf("version %+v", v)
	}
}

func TestSandboxLifecycle(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	spec := cove.SandboxSpec{
		Language: "python",
		Limits:   cove.Limits{MemoryBytes: 256 << 20, CPUs: 0.5, Pids: 64, Timeout: 10 * time.Second, OutputBytes: 100_000},
		Env:      map[string]string{"GREETING": "hello"},
		Labels:   map[string]string{"team": "red", "purpose": "test"},
		TTL:      time.Hour, IdleTimeout: 10 * time.Minute,
	}
	sb := e.sandbox(e.admin, spec)
	if sb.State != cove.StateRunning || sb.Language != "python" || sb.Labels["team"] != "red" || sb.Env["GREETING"] != "hello" {
		t.Fatalf("created %+v", sb)
	}
	// Limits cross the wire without loss, including a size that is not a
	// whole number of KiB.
	if sb.Limits.MemoryBytes != 256<<20 || sb.Limits.CPUs != 0.5 || sb.Limits.Pids != 64 || sb.Limits.Timeout != 10*time.Second || sb.Limits.OutputBytes != 100_000 {
		t.Fatalf("limits %+v", sb.Limits)
	}
	if sb.TTL != time.Hour || sb.IdleTimeout != 10*time.Minute || sb.ExpiresAt.Before(time.Now().Add(59*time.Minute)) || sb.CreatedAt.IsZero() {
		t.Fatalf("times %+v", sb)
	}
	got, err := e.admin.GetSandbox(ctx, sb.ID)
	if err != nil || got.ID != sb.ID || got.Limits != sb.Limits {
		t.Fatalf("get: %+v, %v", got, err)
	}
	other := e.sandbox(e.admin, cove.SandboxSpec{Labels: map[string]string{"team": "blue"}})

	// Listing: filters and pages.
	list, err := e.admin.ListSandboxes(ctx, cove.ListOptions{Labels: map[string]string{"team": "red"}})
	if err != nil || len(list.Sandboxes) != 1 || list.Sandboxes[0].ID != sb.ID {
		t.Fatalf("list by label: %+v, %v", list, err)
	}
	page1, err := e.admin.ListSandboxes(ctx, cove.ListOptions{Limit: 1})
	if err != nil || len(page1.Sandboxes) != 1 || page1.NextPageToken == "" {
		t.Fatalf("page 1: %+v, %v", page1, err)
	}
	page2, err := e.admin.ListSandboxes(ctx, cove.ListOptions{Limit: 1, PageToken: page1.NextPageToken})
	if err != nil || len(page2.Sandboxes) != 1 || page2.Sandboxes[0].ID == page1.Sandboxes[0].ID {
		t.Fatalf("page 2: %+v, %v", page2, err)
	}
	_, err = e.admin.ListSandboxes(ctx, cove.ListOptions{State: "sleeping"})
	wantCode(t, err, cove.CodeInvalid)

	// Update: labels replaced, TTL restarted, then removed.
	ttl := 2 * time.Hour
	up, err := e.admin.UpdateSandbox(ctx, sb.ID, cove.SandboxUpdate{Labels: map[string]string{"team": "green"}, TTL: &ttl})
	if err != nil || up.Labels["team"] != "green" || up.Labels["purpose"] != "" || up.TTL != ttl {
		t.Fatalf("update: %+v, %v", up, err)
	}
	zero := time.Duration(0)
	up, err = e.admin.UpdateSandbox(ctx, sb.ID, cove.SandboxUpdate{TTL: &zero})
	if err != nil || up.TTL != 0 || !up.ExpiresAt.IsZero() || up.Labels["team"] != "green" {
		t.Fatalf("update ttl 0: %+v, %v", up, err)
	}

	// A file survives stop and start; a stopped sandbox refuses work with
	// a conflict.
	if _, err := e.admin.WriteFile(ctx, sb.ID, "keep.txt", strings.NewReader("kept"), 0); err != nil {
		t.Fatal(err)
	}
	stopped, err := e.admin.StopSandbox(ctx, sb.ID)
	if err != nil || stopped.State != cove.StateStopped {
		t.Fatalf("stop: %+v, %v", stopped, err)
	}
	_, err = e.admin.Exec(ctx, sb.ID, cove.ExecRequest{Cmd: []string{"true"}})
	wantCode(t, err, cove.CodeConflict)
	resp := e.do("POST", "/v1/sandboxes/"+sb.ID+"/exec", e.adminKey, []byte(`{"cmd":["true"]}`))
	apiError(t, resp, 409, cove.CodeConflict)
	list, err = e.admin.ListSandboxes(ctx, cove.ListOptions{State: cove.StateStopped})
	if err != nil || len(list.Sandboxes) != 1 || list.Sandboxes[0].ID != sb.ID {
		t.Fatalf("list stopped: %+v, %v", list, err)
	}
	started, err := e.admin.StartSandbox(ctx, sb.ID)
	if err != nil || started.State != cove.StateRunning {
		t.Fatalf("start: %+v, %v", started, err)
	}
	res := collect(t)(e.admin.Exec(ctx, sb.ID, cove.ExecRequest{Shell: "cat keep.txt; echo \" $GREETING\""}))
	if res.Stdout != "kept hello\n" {
		t.Fatalf("after restart: %+v", res)
	}

	// Delete: 204, then 404 for everything.
	if err := e.admin.DeleteSandbox(ctx, sb.ID); err != nil {
		t.Fatal(err)
	}
	_, err = e.admin.GetSandbox(ctx, sb.ID)
	wantCode(t, err, cove.CodeNotFound)
	wantCode(t, e.admin.DeleteSandbox(ctx, sb.ID), cove.CodeNotFound)
	resp = e.do("DELETE", "/v1/sandboxes/"+other.ID, e.adminKey, nil)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("raw delete: %d", resp.StatusCode)
	}
}

// TestCreateSandboxWire checks the request shapes the API takes for a new
// sandbox: limits at the top level in MiB, nested, in bytes, durations as
// strings or seconds.
func TestCreateSandboxWire(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name, body string
		check      func(l cove.Limits, sb map[string]any) bool
	}{
		{"top level", `{"memory_mb": 128, "cpus": 0.25, "pids": 32, "disk_mb": 64, "timeout": "5s", "output_kb": 64}`,
			func(l cove.Limits, _ map[string]any) bool {
				return l.MemoryBytes == 128<<20 && l.CPUs == 0.25 && l.Pids == 32 && l.DiskBytes == 64<<20 && l.Timeout == 5*time.Second && l.OutputBytes == 64<<10
			}},
		{"nested", `{"limits": {"memory_mb": 100, "timeout": 7}}`,
			func(l cove.Limits, _ map[string]any) bool {
				return l.MemoryBytes == 100<<20 && l.Timeout == 7*time.Second
			}},
		{"bytes", `{"limits": {"memory_bytes": 134217728, "output_bytes": 1000}}`,
			func(l cove.Limits, _ map[string]any) bool { return l.MemoryBytes == 128<<20 && l.OutputBytes == 1000 }},
		{"both agree", `{"memory_mb": 128, "limits": {"memory_bytes": 134217728}}`,
			func(l cove.Limits, _ map[string]any) bool { return l.MemoryBytes == 128<<20 }},
		{"durations", `{"ttl": 3600, "idle_timeout": "90s"}`,
			func(_ cove.Limits, sb map[string]any) bool {
				return sb["ttl"] == "1h0m0s" && sb["idle_timeout"] == "1m30s"
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp := e.do("POST", "/v1/sandboxes", e.adminKey, []byte(c.body), "Content-Type", "application/json")
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != 201 {
				t.Fatalf("status %d: %s", resp.StatusCode, b)
			}
			var raw map[string]any
			json.Unmarshal(b, &raw)
			id, _ := raw["id"].(string)
			if resp.Header.Get("Location") != "/v1/sandboxes/"+id {
				t.Fatalf("Location %q", resp.Header.Get("Location"))
			}
			sb, err := e.admin.GetSandbox(ctxT(t), id)
			if err != nil {
				t.Fatal(err)
			}
			if !c.check(sb.Limits, raw) {
				t.Fatalf("got %s", b)
			}
			e.admin.DeleteSandbox(ctxT(t), id)
		})
	}
}

// TestParallel runs ten sandboxes at once through one client, as the
// package example does.
func TestParallel(t *testing.T) {
	e := newEnv(t)
	outputs := make([]string, 10)
	errs := make(chan error, 10)
	for i := range outputs {
		go func() {
			st, err := e.admin.Run(ctxT(t), cove.RunRequest{CodeRequest: cove.CodeRequest{Language: "python", Code: "print(" + strings.Repeat("1+", i) + "0)"}})
			if err == nil {
				var res *cove.ExecResult
				if res, err = cove.Collect(st); err == nil {
					outputs[i] = strings.TrimSpace(res.Stdout)
				}
			}
			errs <- err
		}()
	}
	for range outputs {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if got := strings.Join(outputs, " "); got != "0 1 2 3 4 5 6 7 8 9" {
		t.Fatalf("outputs %q", got)
	}
}
