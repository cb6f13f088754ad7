package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

// fuzzRequest sends a request to a handler over a fake service that
// accepts everything, so only decoding can fail, and checks the answer: a
// success or a JSON invalid error (400, 413, 415), never a panic or a 5xx.
func fuzzRequest(t *testing.T, method, target string, body []byte) {
	fuzzRequestAllowing(t, method, target, body, "invalid")
}

// fuzzRequestAllowing is fuzzRequest allowing some more error codes (of
// routing, for fuzzed paths).
func fuzzRequestAllowing(t *testing.T, method, target string, body []byte, codes ...string) {
	req, err := http.NewRequest(method, target, strings.NewReader(string(body)))
	if err != nil {
		t.Skip("not a URL")
	}
	req.Header.Set("Authorization", "Bearer admin")
	w := httptest.NewRecorder()
	New(&fakeService{}, Options{Auth: fakeAuth{}, MaxBodyBytes: 1 << 16}).ServeHTTP(w, req)
	if w.Code < 400 {
		return // a success, or the mux's redirect to a clean path
	}
	if w.Code >= 500 {
		t.Fatalf("%s %s %q: status %d: %s", method, target, body, w.Code, w.Body)
	}
	var e struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || !slices.Contains(codes, e.Error.Code) || e.Error.Message == "" {
		t.Fatalf("%s %s %q: error answer %q", method, target, body, w.Body)
	}
}

func fuzzBody(f *testing.F, method, target string, seeds ...string) {
	for _, s := range append(seeds, "", "{}", "null", "[]", `{"x":1}`, "{", `"s"`, "{} {}") {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) { fuzzRequest(t, method, target, body) })
}

func FuzzDecodeCreateSandbox(f *testing.F) {
	fuzzBody(f, "POST", "/v1/sandboxes",
		`{"language":"python","memory_mb":256,"cpus":0.5,"timeout":"30s","limits":{"memory_bytes":268435456,"timeout":30}}`,
		`{"memory_mb":1e300}`, `{"ttl":-1e20}`, `{"idle_timeout":"1h","labels":{"a":"b"},"env":{"K":"V"}}`,
		`{"limits":{"memory_mb":1,"memory_bytes":2}}`, `{"output_kb":NaN}`, `{"ttl":9223372036854775807}`)
}

func FuzzDecodeUpdateSandbox(f *testing.F) {
	fuzzBody(f, "PATCH", "/v1/sandboxes/sb1", `{"labels":{}}`, `{"ttl":"0s"}`, `{"ttl":null,"labels":null}`)
}

func FuzzDecodeExec(f *testing.F) {
	fuzzBody(f, "POST", "/v1/sandboxes/sb1/exec",
		`{"cmd":["ls","-l"],"cwd":"/tmp","env":{"A":"1"},"stdin":"x","timeout":5}`,
		`{"shell":"echo","stdin":"AAE=","stdin_encoding":"base64","output_kb":1.5}`,
		`{"stdin_encoding":"rot13"}`, `{"output_bytes":-1,"output_kb":2}`)
}

func FuzzDecodeCode(f *testing.F) {
	fuzzBody(f, "POST", "/v1/sandboxes/sb1/code", `{"language":"py","code":"print(1)","argv":["a"],"filename":"m.py"}`)
}

func FuzzDecodeRun(f *testing.F) {
	fuzzBody(f, "POST", "/v1/run",
		`{"language":"python","code":"print(1)","files":{"a.txt":"hi","b.bin":{"content":"AP8=","encoding":"base64"}},"limits":{"memory_mb":64}}`,
		`{"files":{"a":{"content":"x","encoding":"hex"}}}`, `{"files":{"a":{"data":"x"}}}`, `{"files":{"a":null}}`)
}

func FuzzDecodeProcess(f *testing.F) {
	fuzzBody(f, "POST", "/v1/sandboxes/sb1/processes", `{"cmd":["sleep","9"],"name":"s","timeout":"1h"}`)
}

func FuzzDecodeSignal(f *testing.F) {
	fuzzBody(f, "POST", "/v1/sandboxes/sb1/processes/3/signal", `{"signal":"TERM"}`)
}

func FuzzDecodeKey(f *testing.F) {
	fuzzBody(f, "POST", "/v1/keys", `{"name":"ci","admin":false,"quota":{"max_sandboxes":3,"max_memory_mb":1024}}`,
		`{"quota":{"max_memory_mb":1,"max_memory_bytes":5}}`)
}

// FuzzDecodeFiles covers the JSON file operations; op picks one.
func FuzzDecodeFiles(f *testing.F) {
	ops := []string{"mkdir", "move", "chmod", "search", "replace"}
	for i, s := range []string{`{"path":"a/b"}`, `{"from":"a","to":"b"}`, `{"path":"a","mode":"0755"}`, `{"name":"*.py","content":"x","max_results":5}`, `{"paths":["a"],"old":"x","new":"y"}`} {
		f.Add(uint8(i), []byte(s))
	}
	f.Add(uint8(2), []byte(`{"path":"a","mode":99999}`))
	f.Add(uint8(2), []byte(`{"path":"a","mode":"rwx"}`))
	f.Fuzz(func(t *testing.T, op uint8, body []byte) {
		fuzzRequest(t, "POST", "/v1/sandboxes/sb1/fs/"+ops[int(op)%len(ops)], body)
	})
}

// FuzzQuery covers query parameters and paths: listings, file flags,
// terminals' queries and process ids.
func FuzzQuery(f *testing.F) {
	for _, s := range []string{
		"/v1/sandboxes?label=a=b&state=running&limit=10&page_token=x",
		"/v1/sandboxes?limit=-1", "/v1/sandboxes?label=novalue",
		"/v1/sandboxes/sb1/files/a/b.txt?stat=true&recursive=1", "/v1/sandboxes/sb1/files/a?archive=tar",
		"/v1/sandboxes/sb1/files/?list=yes", "/v1/sandboxes/sb1/processes/abc", "/v1/sandboxes/sb1/processes/3/logs?follow=1",
		"/v1/sandboxes/sb1/files/%2F..%2Fetc", "/v1/sandboxes/sb1/files/a?mode=0999",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, target string) {
		if !strings.HasPrefix(target, "/") {
			t.Skip()
		}
		fuzzRequestAllowing(t, "GET", target, nil, "invalid", "not_found")
	})
}
