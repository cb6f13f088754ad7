package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cove-sandbox/cove"
)

// serve sends one request to a handler over f and returns the answer.
func serve(t *testing.T, f *fakeService, opts Options, method, target, key, body string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	if opts.Auth == nil {
		opts.Auth = fakeAuth{}
	}
	h := New(f, opts)
	req := httptest.NewRequest(method, target, strings.NewReader(body))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func errorOf(t *testing.T, w *httptest.ResponseRecorder) (string, string) {
	t.Helper()
	var body struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("answer %d is not a JSON error: %q", w.Code, w.Body)
	}
	return body.Error.Code, body.Error.Message
}

// TestErrorTranslation checks the one place where errors become HTTP.
func TestErrorTranslation(t *testing.T) {
	cases := []struct {
		name   string
		err    error
		status int
		code   cove.Code
		reason string // the answer's error.reason
	}{
		{"invalid", cove.Errorf(cove.CodeInvalid, "bad"), 400, cove.CodeInvalid, ""},
		{"not found", cove.Errorf(cove.CodeNotFound, "gone"), 404, cove.CodeNotFound, ""},
		{"conflict", cove.Errorf(cove.CodeConflict, "stopped"), 409, cove.CodeConflict, ""},
		{"quota", &cove.Error{Code: cove.CodeQuotaExceeded, Message: "busy", RetryAfter: time.Second}, 429, cove.CodeQuotaExceeded, ""},
		{"unavailable", cove.Errorf(cove.CodeUnavailable, "no cgroups"), 503, cove.CodeUnavailable, ""},
		{"timeout", cove.Errorf(cove.CodeTimeout, "slow"), 504, cove.CodeTimeout, ""},
		{"wrapped", fmt.Errorf("creating: %w", cove.Errorf(cove.CodeConflict, "in the way")), 409, cove.CodeConflict, ""},
		{"deadline", fmt.Errorf("waiting: %w", context.DeadlineExceeded), 504, cove.CodeTimeout, ""},
		{"plain error", errors.New("disk on fire"), 500, cove.CodeInternal, ""},
		{"unknown code", &cove.Error{Code: "weird", Message: "strange"}, 500, cove.CodeInternal, ""},
		{"reason", fmt.Errorf("writing: %w", &cove.Error{Code: cove.CodeQuotaExceeded, Message: "no space left", Reason: cove.ReasonDiskFull}), 429, cove.CodeQuotaExceeded, "disk_full"},
		{"internal with a reason", &cove.Error{Code: cove.CodeInternal, Message: "odd", Reason: "secret_detail"}, 500, cove.CodeInternal, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var logs bytes.Buffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			w := serve(t, &fakeService{err: c.err}, Options{Logger: log}, "GET", "/v1/sandboxes/x", "user", "")
			code, msg := errorOf(t, w)
			if w.Code != c.status || code != string(c.code) {
				t.Fatalf("got %d %s %q, want %d %s", w.Code, code, msg, c.status, c.code)
			}
			var body struct {
				Error struct{ Reason *string }
			}
			json.Unmarshal(w.Body.Bytes(), &body)
			if got := body.Error.Reason; c.reason == "" && got != nil || c.reason != "" && (got == nil || *got != c.reason) {
				t.Fatalf("reason %v, want %q (absent when empty): %s", got, c.reason, w.Body)
			}
			if c.code == cove.CodeQuotaExceeded && c.reason == "" && w.Header().Get("Retry-After") != "1" {
				t.Fatal("429 without the Retry-After the error gives")
			}
			if c.code == cove.CodeInternal {
				// The client sees an id, the log has the detail.
				id, ok := strings.CutPrefix(msg, "internal error (id ")
				id = strings.TrimSuffix(id, ")")
				if !ok || len(id) != 12 || strings.Contains(msg, "fire") || strings.Contains(msg, "strange") {
					t.Fatalf("internal message %q", msg)
				}
				if !strings.Contains(logs.String(), id) || !strings.Contains(logs.String(), c.err.Error()) {
					t.Fatalf("log %q lacks the id and detail", logs.String())
				}
			}
		})
	}
}

func TestPanicIsInternal(t *testing.T) {
	var logs bytes.Buffer
	w := serve(t, &fakeService{panicMsg: "boom"}, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))}, "GET", "/v1/sandboxes/x", "user", "")
	code, msg := errorOf(t, w)
	if w.Code != 500 || code != "internal" || strings.Contains(msg, "boom") || !strings.Contains(logs.String(), "boom") {
		t.Fatalf("%d %s %q; log %q", w.Code, code, msg, logs.String())
	}
}

func TestAuth(t *testing.T) {
	f := &fakeService{}
	cases := []struct {
		name   string
		opts   Options
		target string
		key    string
		status int
	}{
		{"no authenticator fails closed", Options{Auth: nilAuth{}}, "/v1/version", "admin", 401},
		{"store failure", Options{Auth: fakeAuth{err: errors.New("db locked")}}, "/v1/version", "admin", 500},
		{"user", Options{}, "/v1/version", "user", 200},
		{"health needs nothing", Options{}, "/healthz", "", 200},
		{"no metrics", Options{}, "/metrics", "admin", 404},
		{"metrics need admin", Options{Metrics: http.NotFoundHandler()}, "/metrics", "user", 403},
		{"metrics need a key", Options{Metrics: http.NotFoundHandler()}, "/metrics", "", 401},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := c.opts
			if _, ok := opts.Auth.(nilAuth); ok {
				// New with no Auth at all.
				h := New(f, Options{})
				req := httptest.NewRequest("GET", c.target, nil)
				req.Header.Set("Authorization", "Bearer "+c.key)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != c.status {
					t.Fatalf("status %d", w.Code)
				}
				return
			}
			if w := serve(t, f, opts, "GET", c.target, c.key, ""); w.Code != c.status {
				t.Fatalf("status %d: %s", w.Code, w.Body)
			}
		})
	}
	// The key reaches the service.
	w := serve(t, f, Options{}, "GET", "/v1/whoami", "user", "")
	if !strings.Contains(w.Body.String(), `"id":"user"`) {
		t.Fatalf("whoami %s", w.Body)
	}
}

type nilAuth struct{ Authenticator }

// TestStreamEvents checks the event encodings and an error after the
// stream began.
func TestStreamEvents(t *testing.T) {
	f := &fakeService{
		events: []cove.Event{
			{Type: cove.EventStdout, Data: []byte("text\n")},
			{Type: cove.EventStderr, Data: []byte{0xff, 0xfe}},
		},
		streamErr: errors.New("agent exploded"),
	}
	w := serve(t, f, Options{}, "POST", "/v1/sandboxes/x/exec", "user", `{"cmd":["x"]}`, "Accept", "application/x-ndjson")
	lines := strings.Split(strings.TrimSpace(w.Body.String()), "\n")
	want := []string{
		`{"type":"stdout","data":"text\n"}`,
		`{"type":"stderr","data":"//4=","encoding":"base64"}`,
	}
	if w.Code != 200 || len(lines) != 3 || lines[0] != want[0] || lines[1] != want[1] {
		t.Fatalf("%d %q", w.Code, lines)
	}
	var last struct {
		Type  string
		Error struct{ Code, Message string }
	}
	json.Unmarshal([]byte(lines[2]), &last)
	if last.Type != "error" || last.Error.Code != "internal" || strings.Contains(last.Error.Message, "exploded") {
		t.Fatalf("error event %q", lines[2])
	}
	if !w.Flushed {
		t.Fatal("stream not flushed")
	}

	w = serve(t, f, Options{}, "POST", "/v1/sandboxes/x/exec", "user", `{"cmd":["x"]}`, "Accept", "text/event-stream")
	if !strings.HasPrefix(w.Body.String(), "event: stdout\ndata: "+want[0]+"\n\nevent: stderr\n") || w.Header().Get("Content-Type") != "text/event-stream" {
		t.Fatalf("SSE %q", w.Body)
	}

	// Without a streaming Accept the error of a failed stream is the
	// answer.
	w = serve(t, f, Options{}, "POST", "/v1/sandboxes/x/exec", "user", `{"cmd":["x"]}`)
	if code, _ := errorOf(t, w); w.Code != 500 || code != "internal" {
		t.Fatalf("collected: %d %s", w.Code, w.Body)
	}
}

func TestStreamKind(t *testing.T) {
	cases := map[string]string{
		"":                                    "",
		"application/json":                    "",
		"application/x-ndjson":                mediaNDJSON,
		"text/event-stream":                   mediaSSE,
		"application/json, text/event-stream": mediaSSE,
		"text/event-stream;q=0":               "",
		"application/x-ndjson, text/event-stream": mediaNDJSON,
	}
	for accept, want := range cases {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Accept", accept)
		if got := streamKind(r); got != want {
			t.Errorf("Accept %q: %q, want %q", accept, got, want)
		}
	}
}

// TestRequestDecoding checks that decoded requests reach the service as
// meant.
func TestRequestDecoding(t *testing.T) {
	cases := []struct {
		name, method, target, body string
		want                       any
	}{
		{"create", "POST", "/v1/sandboxes", `{"memory_mb":1.5,"cpus":2,"limits":{"timeout":"2s","disk_bytes":1048576},"ttl":60,"labels":{"a":"b"}}`,
			cove.SandboxSpec{Limits: cove.Limits{MemoryBytes: 3 << 19, CPUs: 2, Timeout: 2e9, DiskBytes: 1 << 20}, TTL: 60e9, Labels: map[string]string{"a": "b"}}},
		{"empty create", "POST", "/v1/sandboxes", ``, cove.SandboxSpec{}},
		{"exec", "POST", "/v1/sandboxes/x/exec", `{"shell":"ls","stdin":"aGk=","stdin_encoding":"base64","timeout":"1m","output_kb":2}`,
			cove.ExecRequest{Shell: "ls", Stdin: []byte("hi"), Timeout: 6e10, OutputBytes: 2048}},
		{"list", "GET", "/v1/sandboxes?label=a=b=c&state=stopped&limit=5&page_token=t", ``,
			cove.ListOptions{Labels: map[string]string{"a": "b=c"}, State: "stopped", Limit: 5, PageToken: "t"}},
		{"chmod number", "POST", "/v1/sandboxes/x/fs/chmod", `{"path":"a","mode":493}`, uint32(0o755)},
		{"chmod string", "POST", "/v1/sandboxes/x/fs/chmod", `{"path":"a","mode":"0o700"}`, uint32(0o700)},
		{"stdin", "POST", "/v1/sandboxes/x/processes/3/stdin?eof=true", "raw\x00bytes", []byte("raw\x00bytes")},
		{"signal", "POST", "/v1/sandboxes/x/processes/3/signal", `{"signal":"INT"}`, "INT"},
		{"kill", "DELETE", "/v1/sandboxes/x/processes/3", ``, "SIGKILL"},
		{"key", "POST", "/v1/keys", `{"quota":{"max_memory_mb":512,"max_sandboxes":2}}`, cove.KeySpec{Quota: cove.Quota{MaxMemoryBytes: 512 << 20, MaxSandboxes: 2}}},
		{"file path", "PUT", "/v1/sandboxes/x/files/%2Fworkspace/a%20b.txt?mode=0755", "data", "/workspace/a b.txt"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := &fakeService{}
			w := serve(t, f, Options{}, c.method, c.target, "admin", c.body)
			if w.Code >= 300 {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			if got, want := fmt.Sprintf("%#v", f.last), fmt.Sprintf("%#v", c.want); got != want {
				t.Fatalf("service got %s\nwant %s", got, want)
			}
		})
	}
}

// TestBodyLimits checks the 413 and 415 answers.
func TestBodyLimits(t *testing.T) {
	f := &fakeService{}
	opts := Options{MaxBodyBytes: 100, MaxUploadBytes: 1000}
	cases := []struct {
		name, method, target, body string
		header                     []string
		status                     int
	}{
		{"json over", "POST", "/v1/sandboxes", `{"language":"` + strings.Repeat("x", 100) + `"}`, nil, 413},
		{"json at limit", "POST", "/v1/sandboxes", `{"language":"` + strings.Repeat("x", 84) + `"}`, nil, 201},
		{"stdin over", "POST", "/v1/sandboxes/x/processes/1/stdin", strings.Repeat("x", 101), nil, 413},
		{"upload over", "PUT", "/v1/sandboxes/x/files/a", strings.Repeat("x", 1001), nil, 413},
		{"upload at limit", "PUT", "/v1/sandboxes/x/files/a", strings.Repeat("x", 1000), nil, 201},
		{"gzip json", "POST", "/v1/sandboxes", `{}`, []string{"Content-Encoding", "gzip"}, 415},
		{"gzip upload", "PUT", "/v1/sandboxes/x/files/a", `x`, []string{"Content-Encoding", "br"}, 415},
		{"identity is fine", "POST", "/v1/sandboxes", `{}`, []string{"Content-Encoding", "identity"}, 201},
		{"tar over", "POST", "/v1/sandboxes/x/files?extract=tar", strings.Repeat("x", 1001), nil, 413},
		{"unknown extract", "POST", "/v1/sandboxes/x/files?extract=rar", "x", nil, 400},
		{"no body type", "POST", "/v1/sandboxes/x/files", "x", nil, 415},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := serve(t, f, opts, c.method, c.target, "user", c.body, c.header...)
			if w.Code != c.status {
				t.Fatalf("status %d, want %d: %s", w.Code, c.status, w.Body)
			}
			if c.status >= 400 {
				if code, _ := errorOf(t, w); code != "invalid" {
					t.Fatalf("code %s", code)
				}
			}
		})
	}
}

func TestFileInfoHeader(t *testing.T) {
	fi := &cove.FileInfo{Path: "dir/ü 😀.txt", Name: "ü 😀.txt", Size: 3, Mode: 0o640}
	h := fileInfoHeader(fi)
	for _, r := range h {
		if r >= 0x80 || r < 0x20 {
			t.Fatalf("header %q is not printable ASCII", h)
		}
	}
	var back struct{ Path, Mode string }
	if err := json.Unmarshal([]byte(h), &back); err != nil || back.Path != fi.Path || back.Mode != "0640" {
		t.Fatalf("%q decodes to %+v, %v", h, back, err)
	}
}

// TestProcessLogsJSON checks the plain JSON form of logs.
func TestProcessLogsJSON(t *testing.T) {
	f := &fakeService{events: []cove.Event{
		{Type: cove.EventStdout, Data: []byte("a")}, {Type: cove.EventStdout, Data: []byte("b")},
		{Type: cove.EventExit, Result: &cove.ExecResult{Verdict: cove.VerdictOK}},
	}}
	w := serve(t, f, Options{}, "GET", "/v1/sandboxes/x/processes/3/logs?follow=true", "user", "")
	var logs struct {
		Stdout, Stderr string
		Result         struct{ Verdict string }
	}
	if err := json.NewDecoder(bufio.NewReader(w.Body)).Decode(&logs); err != nil || logs.Stdout != "ab" || logs.Result.Verdict != "ok" || f.last != true {
		t.Fatalf("%+v %v (follow %v)", logs, err, f.last)
	}
	w = serve(t, f, Options{}, "GET", "/v1/sandboxes/x/processes/3/logs?follow=perhaps", "user", "")
	if w.Code != 400 {
		t.Fatalf("bad follow: %d", w.Code)
	}
}

// TestWaitProcess checks the wait for a process: the process once it has
// exited, or as it is when the timeout passes first; the timeout's default,
// and the values it refuses, naming it.
func TestWaitProcess(t *testing.T) {
	var p struct {
		PID    int
		State  string
		Result *struct{ Verdict string }
	}
	decode := func(w *httptest.ResponseRecorder) {
		t.Helper()
		p.Result = nil
		if w.Code != 200 {
			t.Fatalf("status %d: %s", w.Code, w.Body)
		}
		if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil {
			t.Fatalf("%q: %v", w.Body, err)
		}
	}

	f := &fakeService{}
	decode(serve(t, f, Options{}, "POST", "/v1/sandboxes/x/processes/3/wait", "user", ""))
	if p.PID != 3 || p.State != "exited" || p.Result == nil || p.Result.Verdict != "ok" || f.last != 3 {
		t.Errorf("exited: %+v (service got %v)", p, f.last)
	}
	if f.waitFor <= 29*time.Second || f.waitFor > 30*time.Second {
		t.Errorf("no timeout: waited up to %v, want 30s", f.waitFor)
	}
	for q, want := range map[string]time.Duration{"90": 90 * time.Second, "1.5": 1500 * time.Millisecond, "10m": 10 * time.Minute, "2m30s": 150 * time.Second} {
		serve(t, f, Options{}, "POST", "/v1/sandboxes/x/processes/3/wait?timeout="+q, "user", "")
		if f.waitFor <= want-time.Second || f.waitFor > want {
			t.Errorf("timeout=%s: waited up to %v, want %v", q, f.waitFor, want)
		}
	}

	// When the timeout passes first, the answer is the process as it is.
	f = &fakeService{running: true}
	start := time.Now()
	decode(serve(t, f, Options{}, "POST", "/v1/sandboxes/x/processes/3/wait?timeout=200ms", "user", ""))
	if d := time.Since(start); d < 200*time.Millisecond || d > 5*time.Second {
		t.Errorf("timeout=200ms answered after %v", d)
	}
	if p.PID != 3 || p.State != "running" || p.Result != nil {
		t.Errorf("at the timeout: %+v, want it running", p)
	}

	for _, q := range []string{"soon", "0", "-5s", "10m1s", "601", "NaN"} {
		w := serve(t, &fakeService{}, Options{}, "POST", "/v1/sandboxes/x/processes/3/wait?timeout="+q, "user", "")
		code, msg := errorOf(t, w)
		want := fmt.Sprintf(`invalid timeout=%q: use a duration such as "30s" or a number of seconds, more than 0 and at most 10m`, q)
		if w.Code != 400 || code != "invalid" || msg != want {
			t.Errorf("timeout=%s: %d %s %q, want 400 invalid %q", q, w.Code, code, msg, want)
		}
	}

	f = &fakeService{err: cove.Errorf(cove.CodeNotFound, "no background process with pid 3")}
	if w := serve(t, f, Options{}, "POST", "/v1/sandboxes/x/processes/3/wait", "user", ""); w.Code != 404 {
		t.Errorf("unknown process: %d %s", w.Code, w.Body)
	}
}

// TestStreamedStdinDecoding checks ?stdin=stream: the JSON request on the
// first line, the rest of the body as the program's standard input.
func TestStreamedStdinDecoding(t *testing.T) {
	for target, line := range map[string]string{
		"/v1/sandboxes/x/exec": `{"cmd":["cat"]}`,
		"/v1/sandboxes/x/code": `{"code":"x"}`,
		"/v1/run":              `{"code":"x","language":"python"}`,
	} {
		f := &fakeService{readStdin: true}
		w := serve(t, f, Options{MaxBodyBytes: 100}, "POST", target+"?stdin=stream", "user",
			line+"\n"+"line one\n"+strings.Repeat("x", 200),
			"Content-Type", mediaExecStream, "Accept", "application/x-ndjson")
		if w.Code != 200 || w.Header().Get("Connection") != "close" {
			t.Fatalf("%s: %d %v %s", target, w.Code, w.Header(), w.Body)
		}
		if stdinOf(f.last) == nil {
			t.Fatalf("%s: no StdinReader in %#v", target, f.last)
		}
		if f.stdinErr != nil || string(f.stdin) != "line one\n"+strings.Repeat("x", 200) {
			t.Fatalf("%s: stdin %q, %v", target, f.stdin, f.stdinErr)
		}
		// Once the answer is complete, the body is no longer the
		// program's.
		if n, err := stdinOf(f.last).Read(make([]byte, 1)); n != 0 || err != io.EOF {
			t.Fatalf("%s: a read of stdin after the answer gave %d, %v", target, n, err)
		}
	}
	cases := []struct{ name, target, body string }{
		{"unknown mode", "/v1/sandboxes/x/exec?stdin=lines", "{\"cmd\":[\"cat\"]}\n"},
		{"stdin in the JSON too", "/v1/sandboxes/x/exec?stdin=stream", "{\"cmd\":[\"cat\"],\"stdin\":\"a\"}\nb"},
		{"no request line", "/v1/sandboxes/x/exec?stdin=stream", "\nb"},
		{"bad JSON", "/v1/sandboxes/x/exec?stdin=stream", "{\"cmd\":\n[\"cat\"]}\n"},
	}
	for _, c := range cases {
		w := serve(t, &fakeService{}, Options{}, "POST", c.target, "user", c.body)
		if code, _ := errorOf(t, w); w.Code != 400 || code != "invalid" {
			t.Fatalf("%s: %d %s", c.name, w.Code, w.Body)
		}
	}
	w := serve(t, &fakeService{}, Options{MaxBodyBytes: 100}, "POST", "/v1/sandboxes/x/exec?stdin=stream", "user",
		`{"cmd":["`+strings.Repeat("x", 100)+`"]}`+"\nstdin")
	if w.Code != 413 {
		t.Fatalf("long request line: %d %s", w.Code, w.Body)
	}
}
