package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/httpapi"
	"github.com/cove-sandbox/cove/internal/runtime/native/nativetest"
	"github.com/cove-sandbox/cove/internal/service"
)

// testServer is a real cove server on a loopback port: the service on the
// native backend behind the REST API.
type testServer struct {
	url   string
	admin string // the admin key
	svc   *service.Service
}

func newServer(t *testing.T) *testServer {
	t.Helper()
	be, _ := nativetest.New(t)
	ctx := context.Background()
	svc := service.New(be, service.Options{})
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	admin := "cove_test_admin_" + rand.Text()
	if err := svc.EnsureAdminKey(ctx, admin); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(httpapi.New(svc, httpapi.Options{Auth: svc}))
	t.Cleanup(func() {
		hs.Close()
		svc.Close(context.Background())
	})
	return &testServer{url: hs.URL, admin: admin, svc: svc}
}

// cli returns a CLI that drives the server with key, through COVE_URL and
// COVE_API_KEY, with a data directory of its own.
func (s *testServer) cli(t *testing.T, key string) *cli {
	return &cli{t: t, env: map[string]string{
		"COVE_URL":      s.url,
		"COVE_API_KEY":  key,
		"COVE_DATA_DIR": t.TempDir(),
	}}
}

// with returns a copy of c whose environment has the given changes (an
// empty value unsets).
func (c *cli) with(kv ...string) *cli {
	env := map[string]string{}
	for k, v := range c.env {
		env[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		env[kv[i]] = kv[i+1]
	}
	return &cli{t: c.t, env: env, data: c.data, run: c.run}
}

// stream runs a command with the given streams.
func (c *cli) stream(stdin io.Reader, stdout, stderr io.Writer, args ...string) int {
	return run(context.Background(), args, stdin, stdout, stderr, func(k string) string { return c.env[k] })
}

// ok runs a command that must succeed and returns its stdout.
func (c *cli) ok(args ...string) string {
	c.t.Helper()
	r := c.do("", args...)
	if r.code != 0 {
		c.t.Fatalf("cove %s: exit %d, stderr %q", strings.Join(args, " "), r.code, r.stderr)
	}
	return r.stdout
}

// create makes a sandbox and returns its id.
func (c *cli) create(args ...string) string {
	c.t.Helper()
	id := strings.TrimSpace(c.ok(append([]string{"create"}, args...)...))
	if !regexp.MustCompile(`^[0-9a-z-]+$`).MatchString(id) {
		c.t.Fatalf("create printed %q, want an id", id)
	}
	return id
}

// fails runs a command that must fail with the exit status of code and a
// one-line error matching pattern.
func (c *cli) fails(code cove.Code, pattern string, args ...string) result {
	c.t.Helper()
	r := c.do("", args...)
	want := cove.Codes[code].ExitCode
	if r.code != want || !regexp.MustCompile(pattern).MatchString(r.stderr) || strings.Count(r.stderr, "\n") != 1 {
		c.t.Fatalf("cove %s: exit %d stderr %q, want exit %d and one line matching %s", strings.Join(args, " "), r.code, r.stderr, want, pattern)
	}
	return r
}

// stabilize replaces what changes from run to run in a table (ids, ages,
// times, process ids) with placeholders of the same width, so that the
// columns stay aligned as printed.
func stabilize(s string, ids ...string) string {
	for i, id := range ids {
		s = strings.ReplaceAll(s, id, placeholder(fmt.Sprintf("ID%d", i+1), len(id)))
	}
	s = regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d`).ReplaceAllString(s, "YYYY-MM-DD hh:mm")
	// An age and the spaces after it keep their width whatever the digits.
	return regexp.MustCompile(`\b\d{1,2}s\b *`).ReplaceAllStringFunc(s, func(m string) string {
		return "Ns" + strings.Repeat(" ", len(m)-2)
	})
}

func placeholder(p string, width int) string {
	if len(p) >= width {
		return p[:width]
	}
	return p + strings.Repeat("_", width-len(p))
}

func TestRemoteErrors(t *testing.T) {
	srv := newServer(t)
	c := srv.cli(t, srv.admin)

	t.Run("unknown_sandbox", func(t *testing.T) {
		for _, args := range [][]string{
			{"exec", "nosuch", "--", "true"},
			{"stop", "nosuch"},
			{"start", "nosuch"},
			{"rm", "nosuch"},
			{"ps", "nosuch"},
			{"files", "ls", "nosuch"},
			{"cp", "nosuch:a.txt", t.TempDir()},
			{"shell", "nosuch"},
		} {
			r := c.fails(cove.CodeNotFound, `^cove: sandbox "nosuch" not found\n$`, args...)
			if r.stdout != "" {
				t.Errorf("%v printed %q", args, r.stdout)
			}
		}
	})

	t.Run("no_server", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := ln.Addr().String()
		ln.Close()
		gone := "http://" + addr
		c.with("COVE_URL", gone).fails(cove.CodeUnavailable,
			`^cove: cannot reach the cove server at `+regexp.QuoteMeta(gone)+` \(connection refused\): start one with `+"`cove serve`", "ls")
		// --server wins over COVE_URL.
		c.fails(cove.CodeUnavailable, regexp.QuoteMeta(gone), "--server", gone, "ls")
		// A server that answers, but not in the protocol asked for: the
		// cause is said.
		https := "https" + strings.TrimPrefix(srv.url, "http")
		c.fails(cove.CodeUnavailable, `^cove: cannot reach cove at `+regexp.QuoteMeta(https)+`: http: server gave HTTP response to HTTPS client\n$`, "--server", https, "ls")
		// cove run uses the server once one is chosen.
		c.with("COVE_URL", gone).fails(cove.CodeUnavailable, `cannot reach the cove server`, "run", "-l", "python", "-c", "print(1)")
	})

	t.Run("no_key", func(t *testing.T) {
		// The message names where it looked for the server's admin key,
		// which is not there when the server has another data directory.
		keyFile := filepath.Join(c.env["COVE_DATA_DIR"], "admin.key")
		c.with("COVE_API_KEY", "").fails(cove.CodeUnauthorized,
			`^cove: no API key: set COVE_API_KEY \(cove keys create prints one\), or run as root next to the server: there is no admin key in `+regexp.QuoteMeta(keyFile)+` \(COVE_DATA_DIR names the server's data directory\)\n$`, "ls")
	})

	t.Run("admin_key_env", func(t *testing.T) {
		// COVE_ADMIN_KEY, which the server takes as an admin key, is the
		// CLI's key too, before the data directory's admin.key.
		data := t.TempDir()
		if err := os.WriteFile(filepath.Join(data, "admin.key"), []byte("cove_an_older_admin_key_no_longer_valid\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if r := c.with("COVE_API_KEY", "", "COVE_ADMIN_KEY", srv.admin, "COVE_DATA_DIR", data).do("", "keys", "ls"); r.code != 0 || !strings.Contains(r.stdout, "admin") {
			t.Fatalf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
		}
		// It goes to no server but one on this machine's loopback address.
		for _, away := range []string{"http://192.0.2.1:7070", "https://cove.example.com"} {
			c.with("COVE_API_KEY", "", "COVE_ADMIN_KEY", srv.admin).fails(cove.CodeUnauthorized,
				`^cove: no API key for `+regexp.QuoteMeta(away)+`: set COVE_API_KEY \(cove keys create prints one\); the admin key of a server on this machine \(COVE_ADMIN_KEY, admin.key\) is sent only to a loopback address\n$`, "--server", away, "ls")
		}
		// COVE_API_KEY still comes first.
		c.with("COVE_API_KEY", "cove_not_a_key", "COVE_ADMIN_KEY", srv.admin).fails(cove.CodeUnauthorized, `^cove: .*unknown API key`, "keys", "ls")
	})

	t.Run("admin_key_file", func(t *testing.T) {
		data := t.TempDir()
		if err := os.WriteFile(filepath.Join(data, "admin.key"), []byte(srv.admin+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if r := c.with("COVE_API_KEY", "", "COVE_DATA_DIR", data).do("", "keys", "ls"); r.code != 0 || !strings.Contains(r.stdout, "admin") {
			t.Fatalf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("wrong_key", func(t *testing.T) {
		c.with("COVE_API_KEY", "cove_not_a_key").fails(cove.CodeUnauthorized, `^cove: .*API key`, "ls")
	})

	t.Run("usage", func(t *testing.T) {
		c.fails(cove.CodeInvalid, `^cove: unknown flag: --bogus \(see cove ls --help\)\n$`, "ls", "--bogus")
		c.fails(cove.CodeInvalid, `^cove: usage: cove files mv ID FROM TO\n$`, "files", "mv", "x", "a")
		c.fails(cove.CodeInvalid, `^cove: nothing to run`, "exec", "x")
		c.fails(cove.CodeInvalid, `^cove: --label "nolabel": use KEY=VALUE\n$`, "create", "--label", "nolabel")
		c.fails(cove.CodeInvalid, `^cove: cp copies between a sandbox and this machine`, "cp", "a", "b")
		c.fails(cove.CodeInvalid, `^cove: cp copies between a sandbox and this machine`, "cp", "x:a", "y:b")
	})
}

func TestRunThroughServer(t *testing.T) {
	srv := newServer(t)
	c := srv.cli(t, srv.admin)
	if got := c.ok("run", "-l", "python", "-c", "print(6*7)"); got != "42\n" {
		t.Fatalf("stdout %q", got)
	}
	r := c.do("two\nlines\n", "run", "-i", "-l", "bash", "-c", "wc -l; echo bye >&2; exit 3")
	if r.code != 3 || r.stdout != "2\n" || r.stderr != "bye\n" {
		t.Fatalf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	r = c.do("", "run", "--timeout", "1s", "-l", "bash", "-c", "sleep 10")
	if r.code != 137 || r.stderr != "cove: killed: wall-clock timeout after 1s\n" {
		t.Fatalf("exit %d stderr %q", r.code, r.stderr)
	}
	// The ephemeral sandboxes go once their runs end.
	deadline := time.Now().Add(5 * time.Second)
	for len(ids(t, c, "ls", "--json")) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("sandboxes left behind: %v", ids(t, c, "ls", "--json"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// syncBuffer is a buffer that several goroutines write to, which records
// when the first write happened.
type syncBuffer struct {
	mu    chan struct{}
	buf   bytes.Buffer
	first chan struct{}
}

func newSyncBuffer() *syncBuffer {
	b := &syncBuffer{mu: make(chan struct{}, 1), first: make(chan struct{})}
	return b
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	if b.buf.Len() == 0 && len(p) > 0 {
		close(b.first)
	}
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu <- struct{}{}
	defer func() { <-b.mu }()
	return b.buf.String()
}
