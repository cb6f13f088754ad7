package httpapi

import (
	"strings"
	"testing"
	"time"

	"github.com/cove-sandbox/cove"
)

// TestNotJSONBody checks that a body that is not JSON at all is told so,
// with 415 when its Content-Type says what it is instead, while malformed
// JSON keeps its precise error and JSON sent as form data still works.
func TestNotJSONBody(t *testing.T) {
	cases := []struct {
		name, body, ct string
		status         int
		want           string
	}{
		{"form", "language=python&code=x", "application/x-www-form-urlencoded", 415, "the body must be JSON (Content-Type: application/json), not application/x-www-form-urlencoded"},
		{"text without a type", "language: python", "", 400, "the body must be JSON (Content-Type: application/json)"},
		{"text said to be JSON", "  hello", "application/json", 400, "the body must be JSON (Content-Type: application/json)"},
		{"malformed JSON", `{"language": "python",}`, "application/json", 400, "invalid JSON body at byte"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var header []string
			if c.ct != "" {
				header = []string{"Content-Type", c.ct}
			}
			w := serve(t, &fakeService{}, Options{}, "POST", "/v1/sandboxes", "user", c.body, header...)
			if code, msg := errorOf(t, w); w.Code != c.status || code != "invalid" || !strings.Contains(msg, c.want) {
				t.Fatalf("%d %s %q, want %d %q", w.Code, code, msg, c.status, c.want)
			}
		})
	}
	w := serve(t, &fakeService{}, Options{}, "POST", "/v1/sandboxes", "user", `{"language":"python"}`, "Content-Type", "application/x-www-form-urlencoded")
	if w.Code != 201 {
		t.Fatalf("JSON sent as form data (curl -d): %d %s", w.Code, w.Body)
	}
}

// TestOtherAuthScheme checks that a request with another Authorization
// scheme is told to send a Bearer key.
func TestOtherAuthScheme(t *testing.T) {
	w := serve(t, &fakeService{}, Options{}, "GET", "/v1/sandboxes", "", "", "Authorization", "Basic YTpi")
	code, msg := errorOf(t, w)
	if w.Code != 401 || code != "unauthorized" || msg != "missing API key: Authorization: Basic is not accepted; send the key as Authorization: Bearer <key>" {
		t.Fatalf("%d %s %q", w.Code, code, msg)
	}
}

// TestQuotaRetryAfter checks that Retry-After is sent where the service
// says that waiting can make room, whatever the route: a quota of work
// that ends by itself, not a disk limit reached or sandboxes kept.
func TestQuotaRetryAfter(t *testing.T) {
	full := cove.Errorf(cove.CodeQuotaExceeded, "quota exceeded: this key may have 1 sandbox and has 1; delete one first")
	busy := cove.Errorf(cove.CodeQuotaExceeded, "quota exceeded: this key may run 1 execution at once")
	busy.RetryAfter = time.Second
	rate := cove.Errorf(cove.CodeQuotaExceeded, "the Anthropic API is rate limiting this API key")
	rate.RetryAfter = time.Minute
	half := cove.Errorf(cove.CodeQuotaExceeded, "a quota that frees in half a second")
	half.RetryAfter = 500 * time.Millisecond
	disk := cove.Errorf(cove.CodeQuotaExceeded, "no space left in the workspace: its disk limit is reached")
	cases := []struct {
		err                  error
		method, target, body string
		want                 string
	}{
		{full, "POST", "/v1/sandboxes", `{}`, ""},
		{busy, "POST", "/v1/sandboxes/x/exec", `{"cmd":["true"]}`, "1"},
		{busy, "POST", "/v1/run", `{"language":"python","code":"1"}`, "1"},
		{rate, "POST", "/v1/ai/explain", `{"code":"1"}`, "60"},
		{half, "POST", "/v1/run", `{"language":"python","code":"1"}`, "1"}, // whole seconds, rounded up
		// A full workspace: deleting files makes room, waiting does not,
		// on the routes of files and of code alike.
		{disk, "PUT", "/v1/sandboxes/x/files/big.bin", "data", ""},
		{disk, "POST", "/v1/sandboxes/x/files?extract=tar", "", ""},
		{disk, "POST", "/v1/sandboxes/x/fs/replace", `{"paths":["a"],"old":"a","new":"b"}`, ""},
		{disk, "POST", "/v1/sandboxes/x/code", `{"language":"python","code":"1"}`, ""},
	}
	for _, c := range cases {
		w := serve(t, &fakeService{err: c.err}, Options{}, c.method, c.target, "user", c.body)
		if code, _ := errorOf(t, w); w.Code != 429 || code != "quota_exceeded" || w.Header().Get("Retry-After") != c.want {
			t.Errorf("%s %s (%v): %d %s, Retry-After %q, want %q", c.method, c.target, c.err, w.Code, code, w.Header().Get("Retry-After"), c.want)
		}
	}
}

// TestGzipUploadNotGzip checks that an upload said to be gzipped that is
// not is told so, not taken for a broken tar.
func TestGzipUploadNotGzip(t *testing.T) {
	for _, c := range []struct{ target, ct, want string }{
		{"/v1/sandboxes/x/files", "application/gzip", "(Content-Type application/gzip) but is not gzip"},
		{"/v1/sandboxes/x/files?extract=tgz", "", "(extract=tgz) but is not gzip"},
	} {
		f := &fakeService{}
		var header []string
		if c.ct != "" {
			header = []string{"Content-Type", c.ct}
		}
		w := serve(t, f, Options{}, "POST", c.target, "user", "plain tar bytes", header...)
		if code, msg := errorOf(t, w); w.Code != 400 || code != "invalid" || !strings.Contains(msg, c.want) {
			t.Errorf("%s: %d %s %q", c.target, w.Code, code, msg)
		}
		if f.last != nil {
			t.Errorf("%s: the service got %#v", c.target, f.last)
		}
	}
	// A plain tar, or one whose type does not say, still reaches the
	// service.
	for _, ct := range []string{"application/x-tar", "application/x-gtar"} {
		if w := serve(t, &fakeService{}, Options{}, "POST", "/v1/sandboxes/x/files", "user", "tar", "Content-Type", ct); w.Code != 204 {
			t.Errorf("%s: %d %s", ct, w.Code, w.Body)
		}
	}
}

// TestDoubleV1 checks that a request made with /v1 in the server's URL
// says so.
func TestDoubleV1(t *testing.T) {
	w := serve(t, &fakeService{}, Options{}, "GET", "/v1/v1/sandboxes", "user", "")
	if code, msg := errorOf(t, w); w.Code != 404 || code != "not_found" || !strings.Contains(msg, "the server's URL was given with /v1 at its end") {
		t.Fatalf("%d %s %q", w.Code, code, msg)
	}
}

// TestSearchNegativeMax checks that a negative max_results is refused.
func TestSearchNegativeMax(t *testing.T) {
	f := &fakeService{}
	w := serve(t, f, Options{}, "POST", "/v1/sandboxes/x/fs/search", "user", `{"name":"*.py","max_results":-1}`)
	if code, msg := errorOf(t, w); w.Code != 400 || code != "invalid" || !strings.HasPrefix(msg, "max_results -1 must not be negative") || f.last != nil {
		t.Fatalf("%d %s %q (service got %#v)", w.Code, code, msg, f.last)
	}
	if w := serve(t, f, Options{}, "POST", "/v1/sandboxes/x/fs/search", "user", `{"name":"*.py","max_results":5}`); w.Code != 200 || f.last != (cove.SearchRequest{Name: "*.py", MaxResults: 5}) {
		t.Fatalf("%d %s (service got %#v)", w.Code, w.Body, f.last)
	}
}

// TestLongIDsAreShortened checks that an error does not repeat a huge
// sandbox id or path whole.
func TestLongIDsAreShortened(t *testing.T) {
	id := strings.Repeat("a", 5000)
	f := &fakeService{err: cove.Errorf(cove.CodeNotFound, "sandbox %q not found", id)}
	w := serve(t, f, Options{}, "GET", "/v1/sandboxes/"+id, "user", "")
	code, msg := errorOf(t, w)
	if w.Code != 404 || code != "not_found" || msg != `sandbox "`+id[:64]+`..." not found` {
		t.Fatalf("%d %s %q", w.Code, code, msg)
	}
	w = serve(t, &fakeService{}, Options{}, "GET", "/v1/nope/"+id, "user", "")
	if _, msg := errorOf(t, w); len(msg) > 200 {
		t.Fatalf("no-route message of %d bytes", len(msg))
	}
}
