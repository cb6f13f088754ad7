package httpapi

import (
	"strings"
	"testing"
)

// TestDecodeErrorsNameTheField checks that a value that a wire type
// decodes itself (a duration, a file's mode or content) and refuses is
// answered 400 with a message that begins with the field as the client
// wrote it, says what was sent and how to write it instead, wherever the
// field is: at the top level, in an embedded struct, nested, in a map.
func TestDecodeErrorsNameTheField(t *testing.T) {
	const (
		duration = `is not a duration: use a number of seconds or a string such as "90s" or "1h"`
		mode     = `is not a file mode: use octal permission bits in a string, such as "0644" or "0755"`
		content  = `is not a file's content: give the text as a string, or {"content": "<base64>", "encoding": "base64"}`
	)
	cases := []struct {
		name, method, target, body string
		want                       string // the whole message
	}{
		{"sandbox ttl", "POST", "/v1/sandboxes", `{"ttl":"abc"}`, `ttl: "abc" ` + duration},
		{"sandbox idle_timeout", "POST", "/v1/sandboxes", `{"language":"python","idle_timeout":true}`, `idle_timeout: true ` + duration},
		{"sandbox top-level timeout", "POST", "/v1/sandboxes", `{"timeout":"10 minutes"}`, `timeout: "10 minutes" ` + duration},
		{"sandbox limits.timeout", "POST", "/v1/sandboxes", `{"limits":{"memory_mb":64,"timeout":"abc"}}`, `limits.timeout: "abc" ` + duration},
		{"sandbox out of range", "POST", "/v1/sandboxes", `{"ttl":1e300}`, `ttl: 1e300 ` + duration},
		{"patch ttl", "PATCH", "/v1/sandboxes/x", `{"ttl":"forever"}`, `ttl: "forever" ` + duration},
		{"exec timeout", "POST", "/v1/sandboxes/x/exec", `{"cmd":["true"],"timeout":"5 s"}`, `timeout: "5 s" ` + duration},
		{"exec streamed stdin", "POST", "/v1/sandboxes/x/exec?stdin=stream", "{\"cmd\":[\"cat\"],\"timeout\":[1]}\nin", `timeout: [1] ` + duration},
		{"code timeout", "POST", "/v1/sandboxes/x/code", `{"code":"1","timeout":{}}`, `timeout: {} ` + duration},
		{"run timeout", "POST", "/v1/run", `{"language":"python","code":"1","timeout":"abc"}`, `timeout: "abc" ` + duration},
		{"run limits.timeout", "POST", "/v1/run", `{"language":"python","code":"1","limits":{"timeout":"abc"}}`, `limits.timeout: "abc" ` + duration},
		{"run file", "POST", "/v1/run", `{"language":"python","code":"1","files":{"a.py":5}}`, `files: 5 ` + content},
		{"run file base64", "POST", "/v1/run", `{"language":"python","code":"1","files":{"a.bin":{"content":"%%","encoding":"base64"}}}`, `files: {"content":"%%","encoding":"base64"} ` + content},
		{"run file encoding", "POST", "/v1/run", `{"language":"python","code":"1","files":{"a.bin":{"content":"x","encoding":"hex"}}}`, `files: {"content":"x","encoding":"hex"} ` + content},
		{"process timeout", "POST", "/v1/sandboxes/x/processes", `{"cmd":["sleep","9"],"timeout":"abc"}`, `timeout: "abc" ` + duration},
		{"cell timeout", "POST", "/v1/sandboxes/x/contexts/c/run", `{"code":"1","timeout":"abc"}`, `timeout: "abc" ` + duration},
		{"ai timeout", "POST", "/v1/ai/explain", `{"language":"python","code":"1","timeout":"abc"}`, `timeout: "abc" ` + duration},
		{"ai file", "POST", "/v1/ai/fix", `{"language":"python","code":"1","files":{"b.py":["x"]}}`, `files: ["x"] ` + content},
		{"ai execution limits.timeout", "POST", "/v1/ai/explain", `{"language":"python","code":"1","execution":{"verdict":"ok","limits":{"timeout":"abc"}}}`, `execution.limits.timeout: "abc" ` + duration},
		{"chmod mode", "POST", "/v1/sandboxes/x/fs/chmod", `{"path":"a","mode":"999"}`, `mode: "999" ` + mode},
		{"chmod mode number", "POST", "/v1/sandboxes/x/fs/chmod", `{"path":"a","mode":70000}`, `mode: 70000 ` + mode},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := &fakeService{}
			w := serve(t, f, Options{}, c.method, c.target, "user", c.body)
			if code, msg := errorOf(t, w); w.Code != 400 || code != "invalid" || msg != c.want {
				t.Fatalf("%d %s %q\nwant 400 invalid %q", w.Code, code, msg, c.want)
			}
			if f.last != nil {
				t.Fatalf("the service got %#v", f.last)
			}
		})
	}
}

// TestDecodeErrorsShortenTheValue checks that a long refused value is
// shortened in the message, without breaking a character in two.
func TestDecodeErrorsShortenTheValue(t *testing.T) {
	long := strings.Repeat("é", 100)
	w := serve(t, &fakeService{}, Options{}, "POST", "/v1/sandboxes", "user", `{"ttl":"`+long+`"}`)
	code, msg := errorOf(t, w)
	if w.Code != 400 || code != "invalid" || !strings.HasPrefix(msg, `ttl: "éé`) || !strings.Contains(msg, `... is not a duration`) || strings.ContainsRune(msg, '\uFFFD') || len(msg) > 200 {
		t.Fatalf("%d %s %q", w.Code, code, msg)
	}
}

// TestDecodeErrorsLeaveOutEmbeddedStructs checks that the path of a
// field of the wrong type is the client's, without the Go names of the
// structs embedded on the way (CreateSandbox's Limits, their
// ResourceLimits), however deep.
func TestDecodeErrorsLeaveOutEmbeddedStructs(t *testing.T) {
	cases := []struct{ target, body, want string }{
		{"/v1/sandboxes", `{"memory_mb":"lots"}`, `invalid JSON body: field "memory_mb" must be a number, not string`},
		{"/v1/sandboxes", `{"limits":{"pids":"many"}}`, `invalid JSON body: field "limits.pids" must be an integer, not string`},
		{"/v1/run", `{"code":"1","open_files":true}`, `invalid JSON body: field "open_files" must be an integer, not bool`},
		{"/v1/run", `{"code":"1","argv":"a"}`, `invalid JSON body: field "argv" must be an array, not string`},
		{"/v1/ai/explain", `{"code":"1","execution":{"limits":{"cpus":"2"}}}`, `invalid JSON body: field "execution.limits.cpus" must be a number, not string`},
	}
	for _, c := range cases {
		w := serve(t, &fakeService{}, Options{}, "POST", c.target, "user", c.body)
		if code, msg := errorOf(t, w); w.Code != 400 || code != "invalid" || msg != c.want {
			t.Errorf("%s %s: %d %s %q, want %q", c.target, c.body, w.Code, code, msg, c.want)
		}
	}
}

// TestStdinErrorsNameTheField checks that standard input the API cannot
// decode says whether stdin or stdin_encoding is at fault.
func TestStdinErrorsNameTheField(t *testing.T) {
	cases := []struct{ target, body, want string }{
		{"/v1/sandboxes/x/exec", `{"cmd":["cat"],"stdin":"%%%","stdin_encoding":"base64"}`, `invalid request: stdin: invalid base64 data: illegal base64 data at input byte 0`},
		{"/v1/sandboxes/x/exec", `{"cmd":["cat"],"stdin":"x","stdin_encoding":"hex"}`, `invalid request: stdin_encoding: unknown encoding "hex": use base64, or leave it out for UTF-8 text`},
		{"/v1/sandboxes/x/exec", `{"cmd":["cat"],"stdin_encoding":"hex"}`, `invalid request: stdin_encoding: unknown encoding "hex": use base64, or leave it out for UTF-8 text`},
		{"/v1/sandboxes/x/code", `{"code":"1","stdin":"%%%","stdin_encoding":"base64"}`, `invalid request: stdin: invalid base64 data: illegal base64 data at input byte 0`},
		{"/v1/run", `{"language":"python","code":"1","stdin":"x","stdin_encoding":"hex"}`, `invalid request: stdin_encoding: unknown encoding "hex": use base64, or leave it out for UTF-8 text`},
	}
	for _, c := range cases {
		f := &fakeService{}
		w := serve(t, f, Options{}, "POST", c.target, "user", c.body)
		if code, msg := errorOf(t, w); w.Code != 400 || code != "invalid" || msg != c.want {
			t.Errorf("%s %s: %d %s %q, want %q", c.target, c.body, w.Code, code, msg, c.want)
		}
		if f.last != nil {
			t.Errorf("%s %s: the service got %#v", c.target, c.body, f.last)
		}
	}
}
