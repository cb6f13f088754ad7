package httpapi

import (
	"strings"
	"testing"
)

// TestUncleanPaths checks that a path the mux would clean gets a JSON 400
// that says how to write it, never a redirect, and never reaches the
// service.
func TestUncleanPaths(t *testing.T) {
	cases := []struct {
		name, method, target, want string
	}{
		{"double slash", "PUT", "/v1/sandboxes/x/files/a//b", `the file path "a//b" is not clean: write it as "a/b"`},
		{"dot segment", "PUT", "/v1/sandboxes/x/files/a/./b", `the file path "a/./b" is not clean: write it as "a/b"`},
		{"dot", "PUT", "/v1/sandboxes/x/files/.", `the file path "." is not clean: leave it out (/v1/sandboxes/x/files/) for the workspace itself`},
		{"dot dot", "PUT", "/v1/sandboxes/x/files/../x", `the file path "../x" leaves the workspace`},
		{"inner dot dot", "GET", "/v1/sandboxes/x/files/a/../../x", `the file path "a/../../x" leaves the workspace`},
		{"absolute", "PUT", "/v1/sandboxes/x/files//workspace/foo.txt", `the file path "/workspace/foo.txt" is not clean: an absolute path's leading slash goes into the URL as %2F (/v1/sandboxes/x/files/%2Fworkspace/foo.txt)`},
		{"directory", "GET", "/v1/sandboxes/x/files/a//b/", `write it as "a/b/"`},
		{"escaped", "DELETE", "/v1/sandboxes/x/files/a%20b//c", `the file path "a b//c" is not clean: write it as "a b/c"`},
		{"route", "GET", "/v1//sandboxes", `the path "/v1//sandboxes" is not clean: write it as "/v1/sandboxes"`},
		{"sandbox id", "GET", "/v1/sandboxes/./x", `the path "/v1/sandboxes/./x" is not clean: write it as "/v1/sandboxes/x"`},
		{"root", "GET", "//", `the path "//" is not clean: write it as "/"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := &fakeService{}
			w := serve(t, f, Options{}, c.method, c.target, "user", "data")
			if w.Code != 400 || w.Header().Get("Location") != "" {
				t.Fatalf("%d (Location %q): %s", w.Code, w.Header().Get("Location"), w.Body)
			}
			code, msg := errorOf(t, w)
			if code != "invalid" || !strings.Contains(msg, c.want) {
				t.Fatalf("%s %q, want %q in it", code, msg, c.want)
			}
			if f.last != nil {
				t.Fatalf("the service got %#v", f.last)
			}
		})
	}
	// Clean paths, and file paths sent encoded, still reach the service.
	for _, target := range []string{"/v1/sandboxes/x/files/a/b", "/v1/sandboxes/x/files/dir/", "/v1/sandboxes/x/files/%2Fworkspace/a", "/v1/sandboxes/x/files/a%2F%2Fb"} {
		if w := serve(t, &fakeService{}, Options{}, "GET", target, "user", ""); w.Code != 200 {
			t.Errorf("GET %s: %d %s", target, w.Code, w.Body)
		}
	}
}

// TestNoRedirectForSlash checks that a path that only matches a route
// with a slash added gets a JSON 404 that says so, not a redirect.
func TestNoRedirectForSlash(t *testing.T) {
	f := &fakeService{}
	w := serve(t, f, Options{}, "PUT", "/v1/sandboxes/x/files", "user", "data")
	code, msg := errorOf(t, w)
	if w.Code != 404 || code != "not_found" || w.Header().Get("Location") != "" || !strings.Contains(msg, "PUT /v1/sandboxes/x/files/ takes more after the slash") {
		t.Fatalf("%d %s %q", w.Code, code, msg)
	}
	if f.last != nil {
		t.Fatalf("the service got %#v", f.last)
	}
}
