package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cove-sandbox/cove"
)

func TestNew(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:7070", "https://cove.example/", "http://h/prefix"} {
		if _, err := New(u, "k"); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	for _, u := range []string{"", "127.0.0.1:7070", "ftp://h", "http://", "http://h?x=1", "://"} {
		if _, err := New(u, "k"); cove.ErrorCode(err) != cove.CodeInvalid {
			t.Errorf("%q: %v", u, err)
		}
	}
}

// TestFromEnv checks that the environment names the server and key as
// the CLI reads them, with the default address when COVE_URL is unset.
func TestFromEnv(t *testing.T) {
	t.Setenv("COVE_URL", "")
	t.Setenv("COVE_API_KEY", "secret")
	c, err := FromEnv()
	if err != nil || c.base != DefaultURL || c.key != "secret" {
		t.Fatalf("unset COVE_URL: %+v, %v", c, err)
	}
	t.Setenv("COVE_URL", "https://cove.example/v1/")
	if c, err = FromEnv(); err != nil || c.base != "https://cove.example" {
		t.Fatalf("COVE_URL set: %+v, %v", c, err)
	}
	t.Setenv("COVE_URL", "cove.example:7070")
	if _, err := FromEnv(); cove.ErrorCode(err) != cove.CodeInvalid || !strings.HasPrefix(cove.ErrorMessage(err), "COVE_URL: invalid server URL") {
		t.Fatalf("a malformed COVE_URL: %v", err)
	}
}

// TestNewBaseURL checks that a server URL given with a trailing slash or
// the API's /v1 (as copied from a request) still reaches the API, at
// /v1/... and not /v1/v1/..., under a proxy's prefix too.
func TestNewBaseURL(t *testing.T) {
	cases := map[string]string{
		"":               "/v1/version",
		"/":              "/v1/version",
		"/v1":            "/v1/version",
		"/v1/":           "/v1/version",
		"//v1//":         "/v1/version",
		"/cove":          "/cove/v1/version",
		"/cove/v1/":      "/cove/v1/version",
		"/v1x":           "/v1x/v1/version",
		"/my%20cove/v1":  "/my%20cove/v1/version",
		"/my%2Fcove/v1/": "/my%2Fcove/v1/version",
		"/v1/v1":         "/v1/v1/version",
	}
	for suffix, want := range cases {
		var got string
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got = r.URL.EscapedPath()
			io.WriteString(w, `{"version":"x","backend":"native","languages":[]}`)
		}))
		c, err := New(srv.URL+suffix, "k")
		if err != nil {
			t.Fatalf("%q: %v", suffix, err)
		}
		if _, err := c.Version(context.Background()); err != nil {
			t.Errorf("%q: %v", suffix, err)
		}
		srv.Close()
		if got != want {
			t.Errorf("server URL %s%s: request to %s, want %s", srv.URL, suffix, got, want)
		}
	}
}

func TestEscapeFilePath(t *testing.T) {
	cases := map[string]string{
		"a.txt":          "a.txt",
		"dir/sub/b c.py": "dir/sub/b%20c.py",
		"/workspace/x":   "%2Fworkspace%2Fx",
		".":              "%2E",
		"..":             "%2E%2E",
		"a/../b":         "a%2F..%2Fb",
		"q?#%":           "q%3F%23%25",
	}
	for in, want := range cases {
		if got := escapeFilePath(in); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

// fakeServer answers every request with h.
func fakeServer(t *testing.T, h http.HandlerFunc) *Client {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	c, err := New(srv.URL, "k")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestForeignAnswers checks errors from answers that are not the API's,
// such as a proxy's.
func TestForeignAnswers(t *testing.T) {
	cases := []struct {
		status int
		body   string
		code   cove.Code
	}{
		{502, "<html>Bad Gateway</html>", cove.CodeUnavailable},
		{404, "404 page not found", cove.CodeUnavailable},
		{429, "", cove.CodeQuotaExceeded},
		{413, "too big", cove.CodeInvalid},
		{500, `{"error":{"code":"internal","message":"internal error (id 1)"}}`, cove.CodeInternal},
		{409, `{"error":{"code":"conflict","message":"stopped"}}`, cove.CodeConflict},
		{403, "Forbidden", cove.CodeForbidden},
		{403, `{"error":{"code":"forbidden","message":"only an admin key may manage keys"}}`, cove.CodeForbidden},
		{401, "", cove.CodeUnauthorized},
	}
	for _, c := range cases {
		cl := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(c.status)
			io.WriteString(w, c.body)
		})
		_, err := cl.GetSandbox(context.Background(), "x")
		var ce *cove.Error
		if !errors.As(err, &ce) || ce.Code != c.code || ce.Message == "" {
			t.Errorf("%d %q: %v", c.status, c.body, err)
		}
		// A 404 that is not the API's is an answer of another server.
		if c.status == 404 && !strings.Contains(ce.Message, "does not answer as a cove server") {
			t.Errorf("404 %q: %q does not say that the URL is not a cove server's", c.body, ce.Message)
		}
	}
}

// TestStreamEnds checks how streams end: cleanly, cut short, or with an
// error event.
func TestStreamEnds(t *testing.T) {
	cases := []struct {
		name string
		body string
		cut  bool // abort the connection after the body
		want func(error) bool
	}{
		{"exit", `{"type":"stdout","data":"a"}` + "\n" + `{"type":"exit","result":{"verdict":"ok","exit_code":0,"stdout":"","stderr":"","stdout_truncated":false,"stderr_truncated":false,"wall_ms":1,"cpu_ms":0,"peak_memory_bytes":0,"limits":{}}}` + "\n",
			false, func(err error) bool { return errors.Is(err, io.EOF) }},
		{"no exit", `{"type":"stdout","data":"a"}` + "\n", false,
			func(err error) bool { return cove.ErrorCode(err) == cove.CodeUnavailable }},
		{"cut", `{"type":"stdout","data":"a"}` + "\n" + `{"type":"std`, true,
			func(err error) bool { return cove.ErrorCode(err) == cove.CodeUnavailable }},
		{"error event", `{"type":"stdout","data":"a"}` + "\n" + `{"type":"error","error":{"code":"unavailable","message":"agent gone"}}` + "\n", false,
			func(err error) bool {
				return errors.Is(err, &cove.Error{Code: cove.CodeUnavailable}) && err.Error() == "agent gone"
			}},
		{"garbage", `{"type":"stdout","data":"a"}` + "\nnot json\n", false,
			func(err error) bool { return cove.ErrorCode(err) == cove.CodeUnavailable }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cl := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Accept") != "application/x-ndjson" {
					t.Errorf("Accept %q", r.Header.Get("Accept"))
				}
				w.Header().Set("Content-Type", "application/x-ndjson")
				io.WriteString(w, c.body)
				if c.cut {
					w.(http.Flusher).Flush()
					panic(http.ErrAbortHandler)
				}
			})
			st, err := cl.Exec(context.Background(), "x", cove.ExecRequest{Cmd: []string{"x"}})
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if ev, err := st.Next(); err != nil || string(ev.Data) != "a" {
				t.Fatalf("first event %+v, %v", ev, err)
			}
			var err2 error
			for err2 == nil {
				_, err2 = st.Next()
			}
			if !c.want(err2) {
				t.Fatalf("stream ended with %v", err2)
			}
		})
	}
}

// TestWaitProcessAsksAgain: WaitProcess asks the server again while it
// answers that the process is still running, and not at once when the
// answer came early; it asks for the time of a round each time.
func TestWaitProcessAsksAgain(t *testing.T) {
	var asked []time.Time
	c := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/sandboxes/sb1/processes/7/wait" || r.URL.Query().Get("timeout") != "1m0s" {
			t.Errorf("request %s %s", r.Method, r.URL)
		}
		asked = append(asked, time.Now())
		w.Header().Set("Content-Type", "application/json")
		if len(asked) < 3 {
			io.WriteString(w, `{"pid":7,"cmd":["sleep","9"],"state":"running","started_at":"2025-01-01T00:00:00Z"}`)
			return
		}
		io.WriteString(w, `{"pid":7,"cmd":["sleep","9"],"state":"exited","started_at":"2025-01-01T00:00:00Z","result":{"verdict":"exit_nonzero","exit_code":2}}`)
	})
	p, err := c.WaitProcess(context.Background(), "sb1", 7)
	if err != nil || p.State != cove.ProcessExited || p.Result == nil || p.Result.ExitCode != 2 {
		t.Fatalf("WaitProcess: %+v, %v", p, err)
	}
	if len(asked) != 3 {
		t.Fatalf("asked %d times, want 3", len(asked))
	}
	for i := 1; i < len(asked); i++ {
		if d := asked[i].Sub(asked[i-1]); d < 900*time.Millisecond {
			t.Errorf("asked again %v after an early answer", d)
		}
	}

	// A context that ends between rounds ends the wait.
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	asked = nil
	c = fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		asked = append(asked, time.Now())
		io.WriteString(w, `{"pid":7,"cmd":["sleep","9"],"state":"running","started_at":"2025-01-01T00:00:00Z"}`)
	})
	if _, err := c.WaitProcess(ctx, "sb1", 7); !errors.Is(err, context.DeadlineExceeded) || len(asked) != 1 {
		t.Fatalf("WaitProcess past its deadline: %v after %d requests", err, len(asked))
	}
}

// TestRetryAfter checks that a quota_exceeded answer's Retry-After
// reaches the caller through RetryAfter, and only that of a quota error.
func TestRetryAfter(t *testing.T) {
	cases := []struct {
		name, header string
		status       int
		body         string
		want         time.Duration
		ok           bool
	}{
		{"seconds", "1", 429, `{"error":{"code":"quota_exceeded","message":"1 execution at once"}}`, time.Second, true},
		{"fraction", "0.5", 429, `{"error":{"code":"quota_exceeded","message":"rate limited"}}`, 500 * time.Millisecond, true},
		{"date past", "Mon, 02 Jan 2006 15:04:05 GMT", 429, `{"error":{"code":"quota_exceeded","message":"x"}}`, 0, true},
		{"proxy", "60", 429, "Too Many Requests", time.Minute, true},
		{"none", "", 429, `{"error":{"code":"quota_exceeded","message":"delete a sandbox first"}}`, 0, false},
		{"garbage", "soon", 429, `{"error":{"code":"quota_exceeded","message":"x"}}`, 0, false},
		{"not a quota", "5", 503, `{"error":{"code":"unavailable","message":"shutting down"}}`, 0, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cl := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
				if c.header != "" {
					w.Header().Set("Retry-After", c.header)
				}
				w.WriteHeader(c.status)
				io.WriteString(w, c.body)
			})
			_, err := cl.GetSandbox(context.Background(), "x")
			d, ok := RetryAfter(err)
			if d != c.want || ok != c.ok {
				t.Fatalf("RetryAfter(%v) = %v, %v; want %v, %v", err, d, ok, c.want, c.ok)
			}
			var ce *cove.Error
			if !errors.As(err, &ce) || (c.status == 429) != (ce.Code == cove.CodeQuotaExceeded) {
				t.Fatalf("error %#v", err)
			}
			if c.body[0] == '{' && strings.Contains(cove.ErrorMessage(err), "retry") {
				t.Fatalf("the message %q changed", cove.ErrorMessage(err))
			}
		})
	}
	if _, ok := RetryAfter(nil); ok {
		t.Fatal("RetryAfter(nil) asks to retry")
	}
}

// TestEmptyIDs: a call with an empty id (or a process id that is not
// positive) is refused as invalid, saying which id, before any request.
func TestEmptyIDs(t *testing.T) {
	c := fakeServer(t, func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("request %s %s sent", r.Method, r.URL.EscapedPath())
		w.WriteHeader(http.StatusTeapot)
	})
	ctx := context.Background()
	stream := func(_ cove.Stream, err error) error { return err }
	cases := map[string]struct {
		err  error
		want string
	}{}
	add := func(name, want string, err error) {
		cases[name] = struct {
			err  error
			want string
		}{err, want}
	}
	second := func(_ any, err error) error { return err }
	add("GetSandbox", "sandbox", second(c.GetSandbox(ctx, "")))
	add("StopSandbox", "sandbox", second(c.StopSandbox(ctx, "")))
	add("StartSandbox", "sandbox", second(c.StartSandbox(ctx, "")))
	add("UpdateSandbox", "sandbox", second(c.UpdateSandbox(ctx, "", cove.SandboxUpdate{})))
	add("DeleteSandbox", "sandbox", c.DeleteSandbox(ctx, ""))
	add("Exec", "sandbox", stream(c.Exec(ctx, "", cove.ExecRequest{Cmd: []string{"true"}})))
	add("Exec stdin", "sandbox", stream(c.Exec(ctx, "", cove.ExecRequest{Cmd: []string{"true"}, StdinReader: strings.NewReader("x")})))
	add("RunCode", "sandbox", stream(c.RunCode(ctx, "", cove.CodeRequest{Code: "1"})))
	add("StopExecution", "execution", c.StopExecution(ctx, ""))
	add("RevokeKey", "key", c.RevokeKey(ctx, ""))
	add("ListContexts", "sandbox", second(c.ListContexts(ctx, "")))
	add("GetContext", "context", second(c.GetContext(ctx, "sb", "")))
	add("DeleteContext", "context", c.DeleteContext(ctx, "sb", ""))
	add("RunCell", "context", stream(c.RunCell(ctx, "sb", "", cove.CellRequest{Code: "1"})))
	add("GetProcess 0", "process", second(c.GetProcess(ctx, "sb", 0)))
	add("ProcessLogs -1", "process", stream(c.ProcessLogs(ctx, "sb", -1, false)))
	add("SignalProcess no sandbox", "sandbox", c.SignalProcess(ctx, "", 3, "TERM"))
	add("WriteFile", "sandbox", second(c.WriteFile(ctx, "", "a", strings.NewReader("x"), 0o644)))
	add("ListFiles", "sandbox", second(c.ListFiles(ctx, "", "", false)))
	add("UploadFiles", "sandbox", second(c.UploadFiles(ctx, "", func() (*cove.FileUpload, error) {
		return &cove.FileUpload{Path: "a", Body: strings.NewReader("x")}, nil
	})))
	add("OpenPTY", "sandbox", second(c.OpenPTY(ctx, "", cove.PTYRequest{})))
	for name, c := range cases {
		if cove.ErrorCode(c.err) != cove.CodeInvalid || !strings.Contains(cove.ErrorMessage(c.err), "the "+c.want+" id") {
			t.Errorf("%s: %v; want invalid, about the %s id", name, c.err, c.want)
		}
	}
	// A workspace path may be empty: it is the workspace.
	if err := checkPath(filesPath("sb", "")); err != nil {
		t.Errorf("files of the workspace: %v", err)
	}
}
