package httpapi

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cove-sandbox/cove"
)

// TestCodeRequired checks that a request to run code without "code" is
// refused before it reaches the service, while an empty program given
// as "" still runs.
func TestCodeRequired(t *testing.T) {
	cases := []struct{ name, target, body, header string }{
		{"run without code", "/v1/run", `{"language":"python"}`, ""},
		{"run with null code", "/v1/run", `{"language":"python","code":null}`, ""},
		{"code without code", "/v1/sandboxes/x/code", `{}`, ""},
		{"code with an empty body", "/v1/sandboxes/x/code", ``, ""},
		{"code with streamed stdin", "/v1/sandboxes/x/code?stdin=stream", "{\"language\":\"bash\"}\nstdin", mediaExecStream},
		{"cell without code", "/v1/sandboxes/x/contexts/c1/run", `{}`, ""},
		{"cell with an empty body", "/v1/sandboxes/x/contexts/c1/run", ``, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := &fakeService{}
			var header []string
			if c.header != "" {
				header = []string{"Content-Type", c.header}
			}
			w := serve(t, f, Options{}, "POST", c.target, "user", c.body, header...)
			code, msg := errorOf(t, w)
			if w.Code != 400 || code != "invalid" || !strings.HasPrefix(msg, `code is required: send the`) {
				t.Fatalf("%d %s %q", w.Code, code, msg)
			}
			if f.last != nil {
				t.Fatalf("the service got %#v", f.last)
			}
		})
	}
	valid := []struct {
		name, target, body string
		want               any
	}{
		{"run", "/v1/run", `{"language":"python","code":"print(1)"}`, cove.RunRequest{CodeRequest: cove.CodeRequest{Language: "python", Code: "print(1)"}}},
		{"empty program", "/v1/sandboxes/x/code", `{"code":""}`, cove.CodeRequest{}},
		{"empty cell", "/v1/sandboxes/x/contexts/c1/run", `{"code":""}`, cove.CellRequest{}},
		{"cell", "/v1/sandboxes/x/contexts/c1/run", `{"code":"1+1","timeout":"2s"}`, cove.CellRequest{Code: "1+1", Timeout: 2e9}},
	}
	for _, c := range valid {
		t.Run(c.name, func(t *testing.T) {
			f := &fakeService{}
			w := serve(t, f, Options{}, "POST", c.target, "user", c.body)
			if w.Code != 200 {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			if got, want := fmt.Sprintf("%#v", f.last), fmt.Sprintf("%#v", c.want); got != want {
				t.Fatalf("service got %s\nwant %s", got, want)
			}
		})
	}
}

// TestReplaceNewRequired checks that fs/replace without "new" is refused
// rather than deleting the text, and that "new": "" still deletes it.
func TestReplaceNewRequired(t *testing.T) {
	for name, body := range map[string]string{
		"missing":    `{"paths":["r1.txt"],"old":"hello"}`,
		"null":       `{"paths":["r1.txt"],"old":"hello","new":null}`,
		"empty body": ``,
	} {
		t.Run(name, func(t *testing.T) {
			f := &fakeService{}
			w := serve(t, f, Options{}, "POST", "/v1/sandboxes/x/fs/replace", "user", body)
			code, msg := errorOf(t, w)
			if w.Code != 400 || code != "invalid" || msg != `new is required (use "" to delete the text)` {
				t.Fatalf("%d %s %q", w.Code, code, msg)
			}
			if f.last != nil {
				t.Fatalf("the service got %#v", f.last)
			}
		})
	}
	bad := []struct{ name, body, want string }{
		{"unknown field", `{"paths":["a"],"old":"x","new":"y","neww":"z"}`, `invalid JSON body: unknown field "neww": this request takes paths, old, new`},
		{"wrong type", `{"paths":"a","old":"x","new":"y"}`, `field "paths" must be an array, not string`},
	}
	for _, c := range bad {
		w := serve(t, &fakeService{}, Options{}, "POST", "/v1/sandboxes/x/fs/replace", "user", c.body)
		if code, msg := errorOf(t, w); w.Code != 400 || code != "invalid" || !strings.Contains(msg, c.want) {
			t.Errorf("%s: %d %s %q", c.name, w.Code, code, msg)
		}
	}
	f := &fakeService{}
	w := serve(t, f, Options{}, "POST", "/v1/sandboxes/x/fs/replace", "user", `{"paths":["r1.txt"],"old":"hello","new":""}`)
	if want := (cove.ReplaceRequest{Paths: []string{"r1.txt"}, Old: "hello"}); w.Code != 200 || fmt.Sprintf("%#v", f.last) != fmt.Sprintf("%#v", want) {
		t.Fatalf("%d %s: service got %#v", w.Code, w.Body, f.last)
	}
}
