package client_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cove-sandbox/cove"
)

func TestExec(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	sb := e.sandbox(e.admin, cove.SandboxSpec{Language: "python", Env: map[string]string{"FROM_SANDBOX": "s"}})
	binary := []byte{0xff, 0x00, 0xfe, 'a', '\n'}
	cases := []struct {
		name  string
		req   cove.ExecRequest
		check func(*cove.ExecResult) bool
	}{
		{"cmd", cove.ExecRequest{Cmd: []string{"echo", "a b", "c"}},
			func(r *cove.ExecResult) bool { return r.Stdout == "a b c\n" && r.Verdict == cove.VerdictOK }},
		{"shell and env", cove.ExecRequest{Shell: "echo $FROM_SANDBOX$FROM_REQ >&2; exit 3", Env: map[string]string{"FROM_REQ": "r"}},
			func(r *cove.ExecResult) bool {
				return r.Stderr == "sr\n" && r.ExitCode == 3 && r.Verdict == cove.VerdictExitNonzero
			}},
		{"stdin", cove.ExecRequest{Cmd: []string{"cat"}, Stdin: []byte("from stdin")},
			func(r *cove.ExecResult) bool { return r.Stdout == "from stdin" }},
		{"stdin reader", cove.ExecRequest{Cmd: []string{"wc", "-c"}, StdinReader: strings.NewReader(strings.Repeat("x", 1000))},
			func(r *cove.ExecResult) bool { return strings.TrimSpace(r.Stdout) == "1000" }},
		{"binary in and out", cove.ExecRequest{Cmd: []string{"cat"}, Stdin: binary},
			func(r *cove.ExecResult) bool { return r.Stdout == string(binary) }},
		{"cwd", cove.ExecRequest{Cmd: []string{"pwd"}, Cwd: "/tmp"},
			func(r *cove.ExecResult) bool { return r.Stdout == "/tmp\n" }},
		{"timeout", cove.ExecRequest{Cmd: []string{"sleep", "10"}, Timeout: 300 * time.Millisecond},
			func(r *cove.ExecResult) bool {
				return r.Verdict == cove.VerdictTimeout && r.Message != "" && r.Limits.Timeout == 300*time.Millisecond
			}},
		{"output limit", cove.ExecRequest{Shell: "yes", OutputBytes: 10_000},
			func(r *cove.ExecResult) bool {
				return r.Verdict == cove.VerdictOutputLimit && r.StdoutTruncated && len(r.Stdout) <= 10_000
			}},
		{"missing program", cove.ExecRequest{Cmd: []string{"/no/such/program"}},
			func(r *cove.ExecResult) bool {
				return r.Verdict == cove.VerdictSetupFailed || r.Verdict == cove.VerdictExitNonzero
			}},
		{"missing working directory", cove.ExecRequest{Cmd: []string{"ls"}, Cwd: "/workspace/nonexist"},
			func(r *cove.ExecResult) bool {
				return r.Verdict == cove.VerdictSetupFailed && r.Message == "working directory /workspace/nonexist: no such directory"
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			res := collect(t)(e.admin.Exec(ctx, sb.ID, c.req))
			if !c.check(res) {
				t.Fatalf("unexpected result %+v", res)
			}
		})
	}
	t.Run("nothing to run", func(t *testing.T) {
		_, err := e.admin.Exec(ctx, sb.ID, cove.ExecRequest{})
		wantCode(t, err, cove.CodeInvalid)
	})
	t.Run("json answer", func(t *testing.T) {
		resp := e.do("POST", "/v1/sandboxes/"+sb.ID+"/exec", e.adminKey, []byte(`{"shell":"printf 'a\\377'; echo err >&2","timeout":5}`))
		var res map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&res); err != nil || resp.StatusCode != 200 {
			t.Fatalf("status %d, %v", resp.StatusCode, err)
		}
		// Output that is not UTF-8 is base64; text stays text.
		if res["stdout"] != "Yf8=" || res["stdout_encoding"] != "base64" || res["stderr"] != "err\n" || res["stderr_encoding"] != nil {
			t.Fatalf("result %v", res)
		}
		if res["verdict"] != "ok" || res["exit_code"] != 0.0 || res["limits"].(map[string]any)["timeout"] != "5s" {
			t.Fatalf("result %v", res)
		}
	})
}

func TestRunCode(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	sb := e.sandbox(e.admin, cove.SandboxSpec{Language: "python"})
	res := collect(t)(e.admin.RunCode(ctx, sb.ID, cove.CodeRequest{Code: "import sys\nprint(sys.argv[1:], sys.stdin.read())", Argv: []string{"x", "y z"}, Stdin: []byte("in")}))
	if res.Stdout != "['x', 'y z'] in\n" {
		t.Fatalf("default language: %+v", res)
	}
	res = collect(t)(e.admin.RunCode(ctx, sb.ID, cove.CodeRequest{Language: "ts", Code: "const n: number = 6; console.log(n * 7)", Filename: "main.ts"}))
	if res.Stdout != "42\n" {
		t.Fatalf("typescript: %+v", res)
	}
	_, err := e.admin.RunCode(ctx, sb.ID, cove.CodeRequest{Language: "cobol", Code: "x"})
	wantCode(t, err, cove.CodeInvalid)
}

func TestRun(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	res := collect(t)(e.admin.Run(ctx, cove.RunRequest{
		CodeRequest: cove.CodeRequest{Language: "python", Code: "import data\nprint(data.X, open('blob.bin','rb').read())"},
		Files:       map[string][]byte{"data.py": []byte("X = 41 + 1\n"), "blob.bin": {0, 0xff}},
		Limits:      cove.Limits{MemoryBytes: 128 << 20, Timeout: 20 * time.Second},
	}))
	if res.Stdout != "42 b'\\x00\\xff'\n" || res.Limits.MemoryBytes != 128<<20 {
		t.Fatalf("run: %+v", res)
	}
	// The ephemeral sandbox is gone.
	list, err := e.admin.ListSandboxes(ctx, cove.ListOptions{})
	if err != nil || len(list.Sandboxes) != 0 {
		t.Fatalf("sandboxes left after run: %+v, %v", list, err)
	}
	// Files as JSON: a string, or base64.
	resp := e.do("POST", "/v1/run", e.adminKey, []byte(`{"language":"bash","code":"cat a.txt b.bin | od -An -tx1","files":{"a.txt":"hi","b.bin":{"content":"AP8=","encoding":"base64"}}}`))
	var out struct{ Stdout string }
	json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != 200 || strings.Join(strings.Fields(out.Stdout), " ") != "68 69 00 ff" {
		t.Fatalf("run with JSON files: %d %q", resp.StatusCode, out.Stdout)
	}
	_, err = e.admin.Run(ctx, cove.RunRequest{CodeRequest: cove.CodeRequest{Language: "python", Code: "1"}, Limits: cove.Limits{MemoryBytes: 1}})
	wantCode(t, err, cove.CodeInvalid)
}

// slowProgram prints, sleeps a second and prints again (pausing between
// its streams, whose relative order is otherwise not kept).
const slowProgram = "echo one; sleep 1; echo two >&2; sleep 0.2; echo three"

// TestStreamNDJSON checks that events arrive as they happen, in order,
// through the SDK.
func TestStreamNDJSON(t *testing.T) {
	e := newEnv(t)
	ctx := ctxT(t)
	sb := e.sandbox(e.admin, cove.SandboxSpec{})
	start := time.Now()
	st, err := e.admin.Exec(ctx, sb.ID, cove.ExecRequest{Shell: slowProgram})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var got []string
	var firstAt time.Duration
	for {
		ev, err := st.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if firstAt == 0 {
			firstAt = time.Since(start)
		}
		if ev.Type == cove.EventExit {
			got = append(got, "exit:"+string(ev.Result.Verdict))
			continue
		}
		got = append(got, string(ev.Type)+":"+string(ev.Data))
	}
	total := time.Since(start)
	want := []string{"stdout:one\n", "stderr:two\n", "stdout:three\n", "exit:ok"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("events %q, want %q", got, want)
	}
	if firstAt > 700*time.Millisecond || total < time.Second {
		t.Fatalf("first event after %v, end after %v: the stream is not flushed per event", firstAt, total)
	}
	if _, err := st.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("Next after the exit event: %v, want io.EOF", err)
	}
}

// TestStreamRaw checks the NDJSON and SSE formats on the wire.
func TestStreamRaw(t *testing.T) {
	e := newEnv(t)
	sb := e.sandbox(e.admin, cove.SandboxSpec{})
	for _, accept := range []string{"application/x-ndjson", "text/event-stream"} {
		t.Run(accept, func(t *testing.T) {
			start := time.Now()
			resp := e.do("POST", "/v1/sandboxes/"+sb.ID+"/exec", e.adminKey, []byte(`{"shell":"`+slowProgram+`"}`), "Accept", accept)
			if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != accept {
				t.Fatalf("status %d, type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			type event struct {
				Type   string
				Data   string
				Result map[string]any
			}
			var events []event
			var firstAt time.Duration
			br := bufio.NewReader(resp.Body)
			for {
				line, err := br.ReadString('\n')
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if firstAt == 0 {
					firstAt = time.Since(start)
				}
				var name string
				if accept == "text/event-stream" {
					// event: NAME \n data: JSON \n \n
					name = strings.TrimPrefix(strings.TrimSpace(line), "event: ")
					if line, err = br.ReadString('\n'); err != nil || !strings.HasPrefix(line, "data: ") {
						t.Fatalf("SSE data line %q, %v", line, err)
					}
					line = strings.TrimPrefix(line, "data: ")
					if blank, _ := br.ReadString('\n'); blank != "\n" {
						t.Fatalf("SSE event not ended by a blank line: %q", blank)
					}
				}
				var ev event
				if err := json.Unmarshal([]byte(line), &ev); err != nil {
					t.Fatalf("event %q: %v", line, err)
				}
				if name != "" && name != ev.Type {
					t.Fatalf("SSE event name %q for a %q event", name, ev.Type)
				}
				events = append(events, ev)
			}
			if len(events) != 4 || events[0].Data != "one\n" || events[1].Type != "stderr" || events[3].Type != "exit" || events[3].Result["verdict"] != "ok" {
				t.Fatalf("events %+v", events)
			}
			if firstAt > 700*time.Millisecond || time.Since(start) < time.Second {
				t.Fatalf("first event after %v: not flushed", firstAt)
			}
		})
	}
}

// TestDisconnectCancels checks that a client that goes away kills its
// program: the program would write a marker file after sleeping.
func TestDisconnectCancels(t *testing.T) {
	e := newEnv(t)
	sb := e.sandbox(e.admin, cove.SandboxSpec{})
	// Each program sleeps for its own time, so that checkNoMarker can
	// tell its sleep from the others'.
	program := func(marker, sleep string) string {
		return "echo started; sleep " + sleep + "; touch /workspace/" + marker + "; echo done"
	}
	// waitStarted reads the stream until the program has printed.
	waitStarted := func(t *testing.T, st cove.Stream) {
		ev, err := st.Next()
		if err != nil || string(ev.Data) != "started\n" {
			t.Fatalf("first event %+v, %v", ev, err)
		}
	}
	t.Run("context cancelled", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(ctxT(t))
		st, err := e.admin.Exec(ctx, sb.ID, cove.ExecRequest{Shell: program("m1", "1.51")})
		if err != nil {
			t.Fatal(err)
		}
		waitStarted(t, st)
		cancel()
		if _, err := st.Next(); !errors.Is(err, context.Canceled) {
			t.Fatalf("Next after cancel: %v, want context.Canceled", err)
		}
		st.Close()
		checkNoMarker(t, e, sb.ID, "m1", "1.51")
	})
	t.Run("stream closed", func(t *testing.T) {
		t.Parallel()
		st, err := e.admin.Exec(ctxT(t), sb.ID, cove.ExecRequest{Shell: program("m2", "1.52")})
		if err != nil {
			t.Fatal(err)
		}
		waitStarted(t, st)
		st.Close()
		if _, err := st.Next(); err == nil {
			t.Fatal("Next after Close succeeded")
		}
		checkNoMarker(t, e, sb.ID, "m2", "1.52")
	})
	t.Run("deadline", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(ctxT(t), 500*time.Millisecond)
		defer cancel()
		_, err := cove.Collect(must(e.admin.Exec(ctx, sb.ID, cove.ExecRequest{Shell: program("m3", "1.53")})))
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("got %v, want the context's deadline", err)
		}
		// And over raw HTTP without streaming: the server is collecting
		// the result when the connection drops.
		rctx, rcancel := context.WithTimeout(ctxT(t), 500*time.Millisecond)
		defer rcancel()
		req, _ := http.NewRequestWithContext(rctx, "POST", e.url+"/v1/sandboxes/"+sb.ID+"/exec", strings.NewReader(`{"shell":"`+program("m4", "1.54")+`"}`))
		req.Header.Set("Authorization", "Bearer "+e.adminKey)
		start := time.Now()
		if _, err := http.DefaultClient.Do(req); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) < 400*time.Millisecond {
			t.Fatalf("request ended after %v with %v, want the context's deadline", time.Since(start), err)
		}
		checkNoMarker(t, e, sb.ID, "m3", "1.53")
		checkNoMarker(t, e, sb.ID, "m4", "1.54")
	})
	// The program does write the marker when nobody leaves, so the checks
	// above can fail.
	t.Run("control", func(t *testing.T) {
		t.Parallel()
		res := collect(t)(e.admin.Exec(ctxT(t), sb.ID, cove.ExecRequest{Shell: program("m5", "1.55")}))
		if res.Verdict != cove.VerdictOK {
			t.Fatalf("control run: %+v", res)
		}
		if _, err := e.admin.StatFile(ctxT(t), sb.ID, "m5"); err != nil {
			t.Fatalf("control marker: %v", err)
		}
	})
}

// checkNoMarker waits past the program's sleep and checks that it did
// not get to write its marker, and that no sleep is left running.
func checkNoMarker(t *testing.T, e *env, id, marker, sleep string) {
	t.Helper()
	time.Sleep(2 * time.Second)
	_, err := e.admin.StatFile(ctxT(t), id, marker)
	if !isCode(err, cove.CodeNotFound) {
		t.Fatalf("marker %s: %v; the program was not killed", marker, err)
	}
	res := collect(t)(e.admin.Exec(ctxT(t), id, cove.ExecRequest{Shell: "ps -eo args | grep -c '^sleep " + sleep + "' || true"}))
	if strings.TrimSpace(res.Stdout) != "0" {
		t.Fatalf("sleeps still running: %q", res.Stdout)
	}
}

func must(st cove.Stream, err error) cove.Stream {
	if err != nil {
		return errStream{err}
	}
	return st
}

// errStream is a stream that fails at once.
type errStream struct{ err error }

func (s errStream) Next() (cove.Event, error) { return cove.Event{}, s.err }
func (s errStream) Close() error              { return nil }
