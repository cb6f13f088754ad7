package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
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
			if strings.Contains(l, s) {
				return l
			}
		case <-timeout:
			t.Fatalf("cove serve did not log %q", s)
		}
	}
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
		{"address_without_port", "localhost", "", `^cove: address "localhost": use host:port, such as 127.0.0.1:7070`},
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
