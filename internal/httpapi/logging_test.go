package httpapi

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/logtest"
)

// send sends one request to h from remote and returns the answer's status.
func send(h http.Handler, method, target, key, remote string) int {
	req := httptest.NewRequest(method, target, strings.NewReader("{}"))
	req.RemoteAddr = remote
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w.Code
}

// TestKeyChangesAreLogged checks that creating and revoking a key is
// logged at info with the key's id, who did it and from where, and never
// the secret.
func TestKeyChangesAreLogged(t *testing.T) {
	var logs logtest.Buffer
	h := New(&fakeService{}, Options{Auth: fakeAuth{}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if st := send(h, "POST", "/v1/keys", "admin", "192.0.2.7:4000"); st != 201 {
		t.Fatalf("create: %d", st)
	}
	if st := send(h, "DELETE", "/v1/keys/k1", "admin", "192.0.2.7:4000"); st != 204 {
		t.Fatalf("revoke: %d", st)
	}
	for _, msg := range []string{"key created", "key revoked"} {
		got := logs.Lines("level=INFO", `msg="`+msg+`"`, "key=k1", "by=admin", "remote=192.0.2.7:4000")
		if len(got) != 1 {
			t.Errorf("no info line %q with the key, its creator and address in:\n%s", msg, logs.String())
		}
	}
	// The fake's secret is "s": no value of the log may be it.
	if strings.Contains(logs.String(), "=s ") || strings.Contains(logs.String(), `="s"`) {
		t.Errorf("the secret is in the log:\n%s", logs.String())
	}
}

// TestAuthFailuresAreLoggedPaced checks that a request refused for its
// key is logged with its address, and that clients trying keys in a loop
// get one full line a second, the next one after a line that says how
// many were left out, from how many addresses (counted up to 100) and
// why.
func TestAuthFailuresAreLoggedPaced(t *testing.T) {
	var logs logtest.Buffer
	h := New(&fakeService{}, Options{Auth: fakeAuth{}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	refusals := h.(*server).refusals
	// The test ends each second itself, so that it does not depend on
	// how fast the machine sends.
	refusals.every = time.Hour
	endSecond := func() {
		refusals.mu.Lock()
		refusals.from = time.Now().Add(-2 * time.Hour)
		refusals.mu.Unlock()
	}
	if st := send(h, "GET", "/v1/sandboxes", "wrong", "198.51.100.9:5000"); st != 401 {
		t.Fatalf("wrong key: %d", st)
	}
	got := logs.Lines("level=WARN", `msg="authentication failed"`, "remote=198.51.100.9:5000", "path=/v1/sandboxes", `err="unknown API key"`)
	if len(got) != 1 {
		t.Fatalf("no warning with the address of the failed authentication:\n%s", logs.String())
	}
	for i := range 50 {
		send(h, "GET", "/v1/sandboxes", "", fmt.Sprintf("198.51.100.%d:%d", i%3, 5001+i))
	}
	if n := len(logs.Lines("level=WARN")); n != 1 {
		t.Fatalf("%d lines for 51 failures within a second, want 1:\n%s", n, logs.String())
	}
	// The next failure a second later is logged, after the count.
	endSecond()
	send(h, "GET", "/v1/sandboxes", "wrong", "192.0.2.1:80")
	if got := logs.Lines("level=WARN", `msg="refused requests not logged one by one"`, "left_out=50", "since=", "addresses=3", `reasons="authentication failed"`); len(got) != 1 || len(logs.Lines("remote=192.0.2.1:80")) != 1 {
		t.Fatalf("no line counting the 50 left out from 3 addresses before the next failure:\n%s", logs.String())
	}
	// More than 100 addresses are counted as 100+.
	for i := range 150 {
		send(h, "GET", "/v1/sandboxes", "wrong", fmt.Sprintf("203.0.113.%d:80", i))
	}
	endSecond()
	send(h, "GET", "/v1/sandboxes", "", "192.0.2.44:6000")
	if got := logs.Lines("level=WARN", "left_out=150", "addresses=100+"); len(got) != 1 || len(logs.Lines("level=WARN")) != 5 {
		t.Fatalf("no line counting 150 left out from 100+ addresses:\n%s", logs.String())
	}
	if got := logs.Lines("level=WARN", `msg="authentication failed"`, "remote=192.0.2.44:6000", `err="missing API key`); len(got) != 1 {
		t.Fatalf("the failure a second later is not logged:\n%s", logs.String())
	}
	// A valid key is not a failure (a second later, so that one would
	// be logged in full).
	endSecond()
	send(h, "GET", "/v1/sandboxes", "user", "198.51.100.9:5003")
	if strings.Contains(logs.String(), "5003") {
		t.Fatalf("a valid key was logged as a failure:\n%s", logs.String())
	}
}

// TestRequestLogSaysWhoAndWhence checks that the debug log of a request
// has its key's id and the client's address.
func TestRequestLogSaysWhoAndWhence(t *testing.T) {
	var logs logtest.Buffer
	h := New(&fakeService{}, Options{Auth: fakeAuth{}, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	send(h, "GET", "/v1/sandboxes", "user", "203.0.113.5:6000")
	if got := logs.Lines("level=DEBUG", "msg=request", "path=/v1/sandboxes", "status=200", "key=user", "remote=203.0.113.5:6000"); len(got) != 1 {
		t.Fatalf("no request line with the key and the address:\n%s", logs.String())
	}
}

// healthService is a service whose health check answers err.
type healthService struct {
	*fakeService
	mu  sync.Mutex
	err error
}

func (h *healthService) Health(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.err
}

// TestHealthFailureLoggedOnce checks that a failing health check is
// logged once when it starts failing, and once when it is ok again, not
// at every probe of a load balancer.
func TestHealthFailureLoggedOnce(t *testing.T) {
	var logs logtest.Buffer
	svc := &healthService{fakeService: &fakeService{}}
	h := New(svc, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	probe := func(want int) {
		t.Helper()
		if st := send(h, "GET", "/healthz", "", "10.0.0.1:1"); st != want {
			t.Fatalf("health: %d, want %d", st, want)
		}
	}
	probe(200)
	svc.mu.Lock()
	svc.err = cove.Errorf(cove.CodeUnavailable, "shutting down: running executions are finishing")
	svc.mu.Unlock()
	for range 5 {
		probe(503)
	}
	if n := len(logs.Lines("level=WARN")); n != 1 || len(logs.Lines("level=WARN", "health check failing", "shutting down")) != 1 {
		t.Fatalf("5 failing probes logged %d warnings, want 1 saying why:\n%s", n, logs.String())
	}
	svc.mu.Lock()
	svc.err = nil
	svc.mu.Unlock()
	probe(200)
	probe(200)
	if got := logs.Lines("level=INFO", "health check ok again"); len(got) != 1 {
		t.Fatalf("the return to ok is not logged once:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "request failed") {
		t.Fatalf("a health probe was logged as a failed request:\n%s", logs.String())
	}
}

// TestKeyWithoutBearerIsNotEchoed checks that a client that sends its
// key without "Bearer " before it is told so, and that neither the 401
// answer nor the log repeat the key; a scheme's name is still named.
func TestKeyWithoutBearerIsNotEchoed(t *testing.T) {
	const key = "cove_Q1vNnxc0Zb7uTq2YwRk9LmPd4sXe8HjA3fGiK43zw"
	cases := []struct {
		header, secret, want string
	}{
		{key, key, `looks like a key without \"Bearer \" before it`},
		{key + " trailing", key, `looks like a key without \"Bearer \" before it`},
		{"COVE_" + key[5:], key[5:], `looks like a key without \"Bearer \" before it`},
		{"sk-live-4eC39HqLyjWDarjtT1zdp7dc", "4eC39HqLyjWDarjtT1zdp7dc", `the Authorization header must be \"Bearer <key>\"`},
		{"abcdefghijklmnopqrstuvwxyz", "abcdefghijklmnopqrstuvwxyz", `the Authorization header must be \"Bearer <key>\"`},
		{"Token " + key, key, "Authorization: Token is not accepted"},
		{"Basic YTpi", "YTpi", "Authorization: Basic is not accepted"},
	}
	for _, c := range cases {
		var logs logtest.Buffer
		srv := httptest.NewServer(New(&fakeService{}, Options{Auth: fakeAuth{}, Logger: slog.New(slog.NewTextHandler(&logs, nil))}))
		req, _ := http.NewRequest("GET", srv.URL+"/v1/whoami", nil)
		req.Header.Set("Authorization", c.header)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		srv.Close()
		if resp.StatusCode != 401 || !strings.Contains(string(body), c.want) {
			t.Errorf("Authorization: %s: %d %s, want 401 saying %s", c.header, resp.StatusCode, body, c.want)
		}
		if len(logs.Lines("level=WARN", `msg="authentication failed"`, "err=")) != 1 {
			t.Errorf("Authorization: %s: the refusal is not logged:\n%s", c.header, logs.String())
		}
		// No piece of the secret as long as a scheme's name may be
		// repeated, even cut short.
		for _, out := range []string{string(body), logs.String()} {
			if s := c.secret[:min(16, len(c.secret))]; strings.Contains(out, s) {
				t.Errorf("Authorization: %s: the secret is repeated: %s", c.header, out)
			}
		}
	}
}
