package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/client"
)

// serveProc is `cove serve` running as a real process (the test binary,
// acting as the cove command).
type serveProc struct {
	cmd  *exec.Cmd
	url  string
	logs chan string
	// seen are the lines of the log that waitLog and rest have read.
	seen []string
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func startServe(t *testing.T, c *cli, addr string, extraEnv ...string) *serveProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "serve", "--addr", addr)
	cmd.Env = append(os.Environ(), append([]string{"COVE_TEST_AS_CLI=1", "COVE_DATA_DIR=" + c.data, "COVE_RUN_DIR=" + c.run, "COVE_POOL_SIZE=1"}, extraEnv...)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &serveProc{cmd: cmd, url: "http://" + addr, logs: make(chan string, 1000)}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			select {
			case p.logs <- sc.Text():
			default:
			}
		}
		close(p.logs)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
	})
	p.waitLog(t, "serving on")
	return p
}

// waitLog waits for a log line containing s and returns it.
func (p *serveProc) waitLog(t *testing.T, s string) string {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-p.logs:
			if !ok {
				t.Fatalf("cove serve exited before logging %q", s)
			}
			p.seen = append(p.seen, l)
			if strings.Contains(l, s) {
				return l
			}
		case <-timeout:
			t.Fatalf("cove serve did not log %q", s)
		}
	}
}

// rest reads the log to its end, once the server has exited, and returns
// all of it.
func (p *serveProc) rest() []string {
	for l := range p.logs {
		p.seen = append(p.seen, l)
	}
	return p.seen
}

func adminClient(t *testing.T, c *cli, url string) *client.Client {
	t.Helper()
	key, err := os.ReadFile(filepath.Join(c.data, "admin.key"))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := client.New(url, strings.TrimSpace(string(key)))
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// TestServeLifecycle starts the real server, checks its admin key, refuses
// a second server on the same data directory, drains on SIGTERM, and
// brings sandboxes back stopped with their files after a restart.
func TestServeLifecycle(t *testing.T) {
	c := newCLI(t)
	addr := freeAddr(t)
	srv := startServe(t, c, addr)
	fi, err := os.Stat(filepath.Join(c.data, "admin.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("admin.key: %v %v", fi, err)
	}
	// Its stderr is not a terminal: the login link, an admin session for
	// whoever holds it, is in a file as private as admin.key, and only
	// that file is named in the log.
	loginFile := filepath.Join(c.data, "login.url")
	if l := srv.waitLog(t, "web UI:"); l != "web UI: the login link is in "+loginFile+" (as private as admin.key; a new one on every start)" {
		t.Errorf("the log says %q", l)
	}
	if fi, err := os.Stat(loginFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("login.url: %v %v", fi, err)
	}
	link, err := os.ReadFile(loginFile)
	if err != nil {
		t.Fatal(err)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	lresp, err := noRedirect.Get(strings.TrimSpace(string(link)))
	if err != nil {
		t.Fatal(err)
	}
	lresp.Body.Close()
	if !slices.ContainsFunc(lresp.Cookies(), func(c *http.Cookie) bool { return c.HttpOnly && c.Value != "" }) {
		t.Fatalf("the login link gave %s and no session cookie", lresp.Status)
	}
	cl := adminClient(t, c, srv.url)
	ctx := context.Background()
	sb, err := cl.CreateSandbox(ctx, cove.SandboxSpec{Labels: map[string]string{"test": "serve"}})
	if err != nil {
		t.Fatal(err)
	}
	st, err := cl.Exec(ctx, sb.ID, cove.ExecRequest{Shell: "echo kept > f"})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := cove.Collect(st); err != nil || res.Verdict != cove.VerdictOK {
		t.Fatalf("exec: %+v %v", res, err)
	}

	// The metrics say how much room is left on the data disk.
	req, _ := http.NewRequest("GET", srv.url+"/metrics", nil)
	key, err := os.ReadFile(filepath.Join(c.data, "admin.key"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(key)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var statfs unix.Statfs_t
	if err := unix.Statfs(c.data, &statfs); err != nil {
		t.Fatal(err)
	}
	free, found := -1.0, false
	for _, line := range strings.Split(string(metrics), "\n") {
		if v, ok := strings.CutPrefix(line, "cove_data_disk_free_bytes "); ok {
			free, err = strconv.ParseFloat(v, 64)
			found = err == nil
		}
	}
	// Within 1 GiB of what the test sees: other tests write there too.
	if want := float64(statfs.Bavail) * float64(statfs.Bsize); !found || free < want-(1<<30) || free > want+(1<<30) {
		t.Errorf("cove_data_disk_free_bytes = %v (found %v), want about %v", free, found, want)
	}

	// A second server on the same data directory is refused.
	second := exec.Command(os.Args[0], "serve", "--addr", freeAddr(t))
	second.Env = append(os.Environ(), "COVE_TEST_AS_CLI=1", "COVE_DATA_DIR="+c.data, "COVE_RUN_DIR="+c.run)
	out, err := second.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "another cove serve is using") {
		t.Fatalf("second server: %v\n%s", err, out)
	}

	// SIGTERM lets a running execution finish.
	slow, err := cl.Exec(ctx, sb.ID, cove.ExecRequest{Shell: "sleep 1; echo drained"})
	if err != nil {
		t.Fatal(err)
	}
	// Let the execution start before the server is told to stop.
	time.Sleep(300 * time.Millisecond)
	srv.cmd.Process.Signal(syscall.SIGTERM)
	// While it drains, its health check says it takes no new work, so
	// that a load balancer sends that elsewhere.
	anon, err := client.New(srv.url, "")
	if err != nil {
		t.Fatal(err)
	}
	herr := anon.Health(ctx)
	for deadline := time.Now().Add(500 * time.Millisecond); herr == nil && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
		herr = anon.Health(ctx)
	}
	if cove.ErrorCode(herr) != cove.CodeUnavailable || !strings.Contains(cove.ErrorMessage(herr), "shutting down") {
		t.Errorf("health while draining: %v, want unavailable: shutting down", herr)
	}
	res, err := cove.Collect(slow)
	if err != nil {
		t.Fatalf("draining: %v", err)
	}
	if res.Stdout != "drained\n" || res.Verdict != cove.VerdictOK {
		t.Fatalf("drained execution: %+v", res)
	}
	if err := srv.cmd.Wait(); err != nil {
		t.Fatalf("cove serve after SIGTERM: %v", err)
	}

	srv = startServe(t, c, addr)
	cl = adminClient(t, c, srv.url)
	got, err := cl.GetSandbox(ctx, sb.ID)
	if err != nil || got.State != cove.StateStopped {
		t.Fatalf("after restart: %+v %v", got, err)
	}
	if _, err := cl.StartSandbox(ctx, sb.ID); err != nil {
		t.Fatal(err)
	}
	st, err = cl.Exec(ctx, sb.ID, cove.ExecRequest{Shell: "cat f"})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := cove.Collect(st); err != nil || res.Stdout != "kept\n" {
		t.Fatalf("files after restart: %+v %v", res, err)
	}
}

// TestServeKill9 kills the server with SIGKILL while a sandbox runs a
// program: nothing of it may survive, and the next start recovers.
// TestServeAddressTaken checks that a server whose address is taken fails
// before it leaves anything behind: no key, no database, no mounted volume.
func TestServeAddressTaken(t *testing.T) {
	c := newCLI(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cmd := exec.Command(os.Args[0], "serve", "--addr", ln.Addr().String())
	cmd.Env = append(os.Environ(), "COVE_TEST_AS_CLI=1", "COVE_DATA_DIR="+c.data, "COVE_RUN_DIR="+c.run)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "listening on "+ln.Addr().String()) || !strings.Contains(string(out), "--addr") {
		t.Fatalf("serve on a taken address: %v\n%s", err, out)
	}
	for _, name := range []string{"admin.key", "cove.db", "volume.img"} {
		if _, err := os.Stat(filepath.Join(c.data, name)); err == nil {
			t.Errorf("%s was made by a server that could not listen", name)
		}
	}
	if mi, err := os.ReadFile("/proc/self/mountinfo"); err == nil && strings.Contains(string(mi), c.data) {
		t.Errorf("something is mounted under %s:\n%s", c.data, mi)
	}
}

// TestServeRefusesBadSettingsFirst checks that settings that can be
// refused without trying are refused as bad input, before the server
// makes a key, a database or a volume.
func TestServeRefusesBadSettingsFirst(t *testing.T) {
	for _, tc := range []struct {
		name, addr, adminKey, want string
	}{
		{"address_without_port", "localhost", "", `^cove: invalid configuration: --addr "localhost": use host:port, such as 127.0.0.1:7070`},
		{"short_admin_key", "127.0.0.1:0", "short", `^cove: COVE_ADMIN_KEY is too short`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCLI(t)
			c.env["COVE_ADMIN_KEY"] = tc.adminKey
			r := c.do("", "serve", "--addr", tc.addr)
			if r.code != cove.Codes[cove.CodeInvalid].ExitCode || !regexp.MustCompile(tc.want).MatchString(r.stderr) || strings.Count(r.stderr, "\n") != 1 {
				t.Fatalf("exit %d stderr %q, want exit %d and one line matching %s", r.code, r.stderr, cove.Codes[cove.CodeInvalid].ExitCode, tc.want)
			}
			for _, name := range []string{"admin.key", "cove.db", "volume.img"} {
				if _, err := os.Stat(filepath.Join(c.data, name)); err == nil {
					t.Errorf("%s was made by a server that refused its settings", name)
				}
			}
		})
	}
}

func TestServeKill9(t *testing.T) {
	c := newCLI(t)
	addr := freeAddr(t)
	srv := startServe(t, c, addr)
	cl := adminClient(t, c, srv.url)
	ctx := context.Background()
	sb, err := cl.CreateSandbox(ctx, cove.SandboxSpec{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cl.StartProcess(ctx, sb.ID, cove.ProcessRequest{Shell: "sleep 1000"}); err != nil {
		t.Fatal(err)
	}
	srv.cmd.Process.Signal(syscall.SIGKILL)
	srv.cmd.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for procsOf(sb.ID) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the sandbox's processes outlived the killed server")
		}
		time.Sleep(10 * time.Millisecond)
	}
	srv = startServe(t, c, addr)
	cl = adminClient(t, c, srv.url)
	got, err := cl.GetSandbox(ctx, sb.ID)
	if err != nil || got.State != cove.StateStopped {
		t.Fatalf("after kill -9 and restart: %+v %v", got, err)
	}
	// The dead sandbox's cgroups are gone; its workspace stays for a start.
	if left, _ := filepath.Glob("/sys/fs/cgroup/*/cove/" + sb.ID); len(left) > 0 {
		t.Fatalf("cgroups left after restart: %v", left)
	}
	if _, err := cl.StartSandbox(ctx, sb.ID); err != nil {
		t.Fatal(err)
	}
}

// TestOneShotRunKeepsServerWorkspaces runs `cove run` in-process next to a
// server on the same data directory: its sweep must not take the
// workspace of the server's stopped sandbox.
func TestOneShotRunKeepsServerWorkspaces(t *testing.T) {
	c := newCLI(t)
	srv := startServe(t, c, freeAddr(t))
	cl := adminClient(t, c, srv.url)
	ctx := context.Background()
	sb, err := cl.CreateSandbox(ctx, cove.SandboxSpec{})
	if err != nil {
		t.Fatal(err)
	}
	st, err := cl.Exec(ctx, sb.ID, cove.ExecRequest{Shell: "echo mine > f"})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := cove.Collect(st); err != nil || res.Verdict != cove.VerdictOK {
		t.Fatalf("exec: %+v %v", res, err)
	}
	if _, err := cl.StopSandbox(ctx, sb.ID); err != nil {
		t.Fatal(err)
	}
	if r := c.do("", "run", "-l", "python", "-c", "print(1)"); r.code != 0 {
		t.Fatalf("cove run: %d %s", r.code, r.stderr)
	}
	if _, err := cl.StartSandbox(ctx, sb.ID); err != nil {
		t.Fatal(err)
	}
	st, err = cl.Exec(ctx, sb.ID, cove.ExecRequest{Shell: "cat f"})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := cove.Collect(st); err != nil || res.Stdout != "mine\n" {
		t.Fatalf("the stopped sandbox lost its files: %+v %v", res, err)
	}
}

// status answers a GET of url with key ("" for none) and returns its status.
func status(t *testing.T, url, key string) int {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestServeOperatorSettings checks what an operator sets and reads in
// the log: /metrics needs a key unless metrics_public is set; key changes
// and failed authentications are logged; log_level warn is honoured and
// log_format json gives JSON; an earlier admin key that stays valid
// beside COVE_ADMIN_KEY is warned of; and a default disk limit larger
// than the disk is an error at start that names the setting.
func TestServeOperatorSettings(t *testing.T) {
	c := newCLI(t)
	addr := freeAddr(t)
	srv := startServe(t, c, addr, "COVE_POOL_SIZE=0")
	if st := status(t, srv.url+"/metrics", ""); st != http.StatusUnauthorized {
		t.Fatalf("/metrics without a key: %d, want 401", st)
	}
	admin := c.with("COVE_URL", srv.url)
	created := admin.ok("keys", "create", "--name", "ci")
	user := secretOf(t, created)
	id := regexp.MustCompile(`(?m)^id: +(\S+)$`).FindStringSubmatch(created)[1]
	if st := status(t, srv.url+"/metrics", user); st != http.StatusForbidden {
		t.Fatalf("/metrics with a key that is not an admin's: %d, want 403", st)
	}
	if l := srv.waitLog(t, "key created"); !strings.Contains(l, "level=INFO") || !strings.Contains(l, "key="+id) || strings.Contains(l, user) {
		t.Errorf("key creation logged as %q, want info with the id and without the secret", l)
	}
	if out := admin.ok("keys", "revoke", id); out != "revoked key "+id+"\n" {
		t.Errorf("keys revoke printed %q", out)
	}
	if l := srv.waitLog(t, "key revoked"); !strings.Contains(l, "level=INFO") || !strings.Contains(l, "key="+id) {
		t.Errorf("key revocation logged as %q", l)
	}
	// The server logs at most one failed authentication a second: the
	// first was the request for /metrics without a key.
	if !slices.ContainsFunc(srv.seen, func(l string) bool {
		return strings.Contains(l, "authentication failed") && strings.Contains(l, "remote=127.0.0.1:") && strings.Contains(l, "path=/metrics")
	}) {
		t.Errorf("the request without a key was not logged with its address:\n%s", strings.Join(srv.seen, "\n"))
	}
	time.Sleep(1100 * time.Millisecond)
	if st := status(t, srv.url+"/v1/sandboxes", user); st != http.StatusUnauthorized {
		t.Fatalf("a revoked key: %d", st)
	}
	if l := srv.waitLog(t, "path=/v1/sandboxes"); !strings.Contains(l, "authentication failed") || !strings.Contains(l, "remote=127.0.0.1:") || !strings.Contains(l, "revoked") {
		t.Errorf("failed authentication logged as %q, want the address and why", l)
	}
	srv.cmd.Process.Signal(syscall.SIGTERM)
	if err := srv.cmd.Wait(); err != nil {
		t.Fatal(err)
	}

	newAdmin := "cove_test_new_admin_" + strconv.Itoa(os.Getpid())
	srv = startServe(t, c, addr, "COVE_POOL_SIZE=0", "COVE_ADMIN_KEY="+newAdmin, "COVE_METRICS_PUBLIC=true",
		"COVE_LOG_FORMAT=json", "COVE_LOG_LEVEL=warn", "COVE_DISK=100T")
	if st := status(t, srv.url+"/metrics", ""); st != http.StatusOK {
		t.Fatalf("/metrics without a key with COVE_METRICS_PUBLIC=true: %d, want 200", st)
	}
	// The CLI takes COVE_ADMIN_KEY as its key; the key it creates is
	// logged at info, which log_level warn leaves out.
	secretOf(t, c.with("COVE_URL", srv.url, "COVE_ADMIN_KEY", newAdmin, "COVE_DATA_DIR", t.TempDir()).ok("keys", "create"))
	srv.cmd.Process.Signal(syscall.SIGTERM)
	if err := srv.cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	var warned, diskError, announced bool
	for _, l := range srv.rest() {
		// Every line is JSON, what a person needs to reach the server
		// (where it listens, the login link) included, at info whatever
		// the level.
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Errorf("log_format json, yet the line %q is not JSON: %v", l, err)
			continue
		}
		msg, _ := rec["msg"].(string)
		switch {
		case msg == "cove serving on http://"+addr && rec["addr"] == addr && rec["level"] == "INFO":
			announced = true
		case msg == "web UI login link written" && rec["path"] == filepath.Join(c.data, "login.url"), msg == "admin API key":
		case rec["level"] != "WARN" && rec["level"] != "ERROR":
			t.Errorf("log_level warn, yet the server logged %q", l)
		case rec["level"] == "WARN" && strings.Contains(msg, "earlier admin key stays valid") && strings.Contains(msg, "cove keys revoke admin") && rec["key"] == "admin":
			warned = true
		case rec["level"] == "ERROR" && strings.Contains(msg, "default disk limit") && rec["setting"] == "COVE_DISK" && rec["free"] != nil:
			diskError = true
		}
	}
	if !warned {
		t.Errorf("no warning that the admin key of admin.key stays valid beside COVE_ADMIN_KEY:\n%s", strings.Join(srv.seen, "\n"))
	}
	if !diskError {
		t.Errorf("no error naming COVE_DISK and the free space:\n%s", strings.Join(srv.seen, "\n"))
	}
	if !announced {
		t.Errorf("no record of where the server listens:\n%s", strings.Join(srv.seen, "\n"))
	}
}

// TestServeDiesMidStream kills the server while a command streams its
// output: the CLI says the server closed the connection, not only that
// reading failed.
func TestServeDiesMidStream(t *testing.T) {
	c := newCLI(t)
	srv := startServe(t, c, freeAddr(t), "COVE_POOL_SIZE=0")
	cl := c.with("COVE_URL", srv.url)
	id := cl.create()
	started := make(chan struct{})
	out := &firstWrite{done: started}
	var stderr strings.Builder
	code := make(chan int, 1)
	go func() {
		code <- cl.stream(strings.NewReader(""), out, &stderr, "exec", id, "--", "sh", "-c", "echo started; sleep 60")
	}()
	select {
	case <-started:
	case <-time.After(20 * time.Second):
		t.Fatal("the command printed nothing")
	}
	srv.cmd.Process.Signal(syscall.SIGKILL)
	select {
	case rc := <-code:
		want := "cove: reading the stream from the server: the server closed the connection before the end of the answer"
		if rc != cove.Codes[cove.CodeUnavailable].ExitCode || !strings.HasPrefix(stderr.String(), want) {
			t.Fatalf("exit %d, stderr %q; want %d and %q", rc, stderr.String(), cove.Codes[cove.CodeUnavailable].ExitCode, want)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the command did not end when its server died")
	}
}

// firstWrite closes done at its first write.
type firstWrite struct {
	once sync.Once
	done chan struct{}
}

func (w *firstWrite) Write(b []byte) (int, error) {
	w.once.Do(func() { close(w.done) })
	return len(b), nil
}

// TestServeHelpSaysWhereSettingsAre checks that cove serve --help tells an
// operator where settings come from and what /healthz and /metrics are.
func TestServeHelpSaysWhereSettingsAre(t *testing.T) {
	var out, errb strings.Builder
	if code := run(t.Context(), []string{"serve", "--help"}, strings.NewReader(""), &out, &errb, func(string) string { return "" }); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"COVE_CONFIG", "/etc/cove/config.json", "GET /healthz", "GET /metrics", "metrics_public", "COVE_METRICS_PUBLIC", "log_format", "COVE_LOG_LEVEL"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("cove serve --help does not mention %s:\n%s", want, out.String())
		}
	}
}
