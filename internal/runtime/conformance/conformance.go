// Package conformance is the test suite every runtime backend must pass:
// it creates real sandboxes through the backend and checks, from inside,
// each isolation property of cove's security model, then checks that
// destroying a sandbox leaves nothing running.
package conformance

import (
	"context"
	"fmt"
	"net"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/agent"
	"github.com/cove-sandbox/cove/internal/runtime"
)

// Env is what the suite needs from the backend under test.
type Env struct {
	// Backend creates the sandboxes.
	Backend runtime.Backend
	// HostPaths are host paths that must be invisible inside a sandbox
	// (for example the data directory).
	HostPaths []string
	// Landlock says the backend's sandboxes are under Landlock.
	Landlock bool
	// Leftovers reports what a destroyed sandbox left on the host
	// (processes, cgroups, mounts, files); empty means clean.
	Leftovers func(id string) []string
}

var idSeq struct {
	sync.Mutex
	n int
}

func newID() string {
	idSeq.Lock()
	defer idSeq.Unlock()
	idSeq.n++
	return fmt.Sprintf("conf%d-%d", os.Getpid(), idSeq.n)
}

func create(t *testing.T, env Env, l cove.Limits) runtime.Instance {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	inst, err := env.Backend.Create(ctx, runtime.Spec{ID: newID(), Limits: l.WithDefaults(cove.DefaultLimits())})
	if err != nil {
		t.Fatalf("creating sandbox: %v", err)
	}
	t.Cleanup(func() { inst.Destroy(context.Background()) })
	return inst
}

// result is an execution's collected output.
type result struct {
	stdout, stderr string
	res            *agent.ExecResult
}

func execIn(t *testing.T, inst runtime.Instance, stdin string, argv ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	spec := &agent.ExecSpec{
		Argv: argv, Dir: "/workspace", TimeoutMS: 20000, OutputLimit: 1 << 20,
		Env: []string{"PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/workspace", "LANG=C.UTF-8"},
	}
	var in *strings.Reader
	if stdin != "" {
		in = strings.NewReader(stdin)
	}
	var ex *agent.Exec
	var err error
	if in != nil {
		ex, err = inst.Agent().Start(ctx, spec, in)
	} else {
		ex, err = inst.Agent().Start(ctx, spec, nil)
	}
	if err != nil {
		t.Fatalf("exec %q: %v", argv, err)
	}
	defer ex.Close()
	var r result
	for {
		out, err := ex.Next()
		if err != nil {
			t.Fatalf("exec %q: %v", argv, err)
		}
		switch {
		case out.Result != nil:
			r.res = out.Result
			return r
		case out.Stream == 1:
			r.stdout += string(out.Data)
		default:
			r.stderr += string(out.Data)
		}
	}
}

func sh(t *testing.T, inst runtime.Instance, script string) result {
	t.Helper()
	return execIn(t, inst, "", "/bin/sh", "-c", script)
}

func mustOK(t *testing.T, r result, what string) string {
	t.Helper()
	if r.res.ExitCode != 0 || r.res.StartError != "" {
		t.Fatalf("%s: exit %d, start error %q, stdout %q, stderr %q", what, r.res.ExitCode, r.res.StartError, r.stdout, r.stderr)
	}
	return r.stdout
}

// Run runs the whole suite against env.
func Run(t *testing.T, env Env) {
	inst := create(t, env, cove.Limits{})

	t.Run("identity", func(t *testing.T) {
		out := mustOK(t, sh(t, inst, "id -u; id -g; id -G; cat /proc/self/uid_map /proc/self/gid_map"), "id")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) < 5 || lines[0] != "1000" || lines[1] != "1000" || lines[2] != "1000" {
			t.Fatalf("want uid/gid/groups 1000, got %q", out)
		}
		for _, m := range lines[3:] {
			f := strings.Fields(m)
			if len(f) != 3 {
				t.Fatalf("bad id map line %q", m)
			}
			if f[0] == "0" && f[1] == "0" {
				t.Fatalf("root inside is root outside: %q", m)
			}
		}
	})

	t.Run("process_status", func(t *testing.T) {
		out := mustOK(t, sh(t, inst, "cat /proc/self/status"), "status")
		want := map[string]*regexp.Regexp{
			"CapInh":     regexp.MustCompile(`(?m)^CapInh:\s+0+$`),
			"CapPrm":     regexp.MustCompile(`(?m)^CapPrm:\s+0+$`),
			"CapEff":     regexp.MustCompile(`(?m)^CapEff:\s+0+$`),
			"CapBnd":     regexp.MustCompile(`(?m)^CapBnd:\s+0+$`),
			"CapAmb":     regexp.MustCompile(`(?m)^CapAmb:\s+0+$`),
			"NoNewPrivs": regexp.MustCompile(`(?m)^NoNewPrivs:\s+1$`),
			"Seccomp":    regexp.MustCompile(`(?m)^Seccomp:\s+2$`),
		}
		for name, re := range want {
			if !re.MatchString(out) {
				t.Errorf("%s: want %s in /proc/self/status, got:\n%s", name, re, grepLine(out, name))
			}
		}
	})

	t.Run("namespaces", func(t *testing.T) {
		out := mustOK(t, sh(t, inst, "readlink /proc/self/ns/user /proc/self/ns/pid /proc/self/ns/mnt /proc/self/ns/net /proc/self/ns/ipc /proc/self/ns/uts /proc/self/ns/cgroup; hostname; echo $$"), "ns")
		host := map[string]string{}
		for _, n := range []string{"user", "pid", "mnt", "net", "ipc", "uts", "cgroup"} {
			l, err := os.Readlink("/proc/self/ns/" + n)
			if err != nil {
				t.Fatal(err)
			}
			host[n] = l
		}
		for _, l := range strings.Split(strings.TrimSpace(out), "\n")[:7] {
			for n, h := range host {
				if l == h {
					t.Errorf("sandbox shares the host's %s namespace (%s)", n, l)
				}
			}
		}
	})

	t.Run("pid_1_is_the_agent", func(t *testing.T) {
		r := sh(t, inst, "cat /proc/1/environ >/dev/null 2>&1 && echo environ-readable; cat /proc/1/exe >/dev/null 2>&1 && echo exe-readable; ls /proc/1/fd >/dev/null 2>&1 && echo fd-listable; true")
		out := mustOK(t, r, "proc 1")
		for _, bad := range []string{"environ-readable", "exe-readable", "fd-listable"} {
			if strings.Contains(out, bad) {
				t.Errorf("/proc/1 leaks: %s", bad)
			}
		}
	})

	t.Run("read_only_root", func(t *testing.T) {
		for _, p := range []string{"/", "/usr", "/etc", "/usr/bin", "/dev", "/proc/sys/kernel"} {
			r := sh(t, inst, fmt.Sprintf("touch %s/cove-probe 2>&1; echo rc=$?", p))
			if !strings.Contains(r.stdout, "rc=1") {
				t.Errorf("writing under %s: %q", p, r.stdout)
			}
		}
		if out := mustOK(t, sh(t, inst, "echo cove > /proc/sys/kernel/hostname 2>/dev/null; hostname"), "hostname"); strings.TrimSpace(out) == "cove" {
			// The name is cove already; the write must have failed.
			_ = out
		}
	})

	t.Run("proc_masked", func(t *testing.T) {
		// Directories of /proc that show host hardware and kernel state are
		// empty and read-only, and files that leak host state or poke the
		// kernel read as nothing, wherever the host has them.
		for _, d := range []string{"acpi", "scsi", "asound", "fs", "irq", "bus"} {
			if fi, err := os.Stat("/proc/" + d); err != nil || !fi.IsDir() {
				continue
			}
			r := sh(t, inst, fmt.Sprintf("ls -A /proc/%s; touch /proc/%s/probe 2>/dev/null && echo written; true", d, d))
			if out := mustOK(t, r, "/proc/"+d); strings.TrimSpace(out) != "" {
				t.Errorf("/proc/%s is not masked: %q", d, out)
			}
		}
		for _, f := range []string{"kcore", "keys", "timer_list", "sched_debug", "sysrq-trigger", "interrupts"} {
			if _, err := os.Stat("/proc/" + f); err != nil {
				continue
			}
			r := sh(t, inst, fmt.Sprintf("head -c 64 /proc/%s 2>/dev/null | wc -c", f))
			if out := strings.TrimSpace(mustOK(t, r, "/proc/"+f)); out != "0" {
				t.Errorf("/proc/%s is not masked: %s bytes read", f, out)
			}
		}
	})

	t.Run("landlock", func(t *testing.T) {
		if !env.Landlock {
			t.Skip("this backend's sandboxes run without Landlock")
		}
		// Raising one's own oom_score_adj is allowed to any process; only
		// Landlock, which leaves /proc read-only, refuses it.
		r := sh(t, inst, "echo 500 > /proc/self/oom_score_adj && echo written")
		if strings.Contains(r.stdout, "written") || !strings.Contains(r.stderr, "Permission denied") {
			t.Fatalf("a write outside the writable trees went through: %q %q", r.stdout, r.stderr)
		}
	})

	t.Run("workspace_and_tmp_writable", func(t *testing.T) {
		out := mustOK(t, sh(t, inst, "pwd; echo hi > /workspace/a && cat /workspace/a; echo t > /tmp/t && cat /tmp/t; echo s > /dev/shm/s && cat /dev/shm/s; stat -c %u:%g /workspace/a"), "write")
		if out != "/workspace\nhi\nt\ns\n1000:1000\n" {
			t.Fatalf("got %q", out)
		}
	})

	t.Run("host_paths_invisible", func(t *testing.T) {
		for _, p := range append([]string{"/root", "/home/" + "x", "/var/lib/cove", "/run/cove"}, env.HostPaths...) {
			r := sh(t, inst, fmt.Sprintf("ls -A %q 2>/dev/null | head -3", p))
			if strings.TrimSpace(r.stdout) != "" {
				t.Errorf("host path %s is visible: %q", p, r.stdout)
			}
		}
		if r := sh(t, inst, "cat /proc/1/mountinfo 2>/dev/null; cat /proc/self/mountinfo"); strings.Contains(r.stdout, "/var/lib/cove") {
			t.Errorf("mountinfo shows the data directory:\n%s", r.stdout)
		}
	})

	t.Run("network_loopback_only", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Write([]byte("host\n"))
				c.Close()
			}
		}()
		port := ln.Addr().(*net.TCPAddr).Port
		script := fmt.Sprintf(`
import socket, errno
def try_connect(host, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM); s.settimeout(2)
    try:
        s.connect((host, port)); return "connected"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e))
print("host-loopback", try_connect("127.0.0.1", %d))
print("outside", try_connect("8.8.8.8", 53))
print("private", try_connect("10.0.0.1", 80))
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen(1)
c = socket.create_connection(srv.getsockname()); print("own-loopback ok")
import os; print(sorted(os.listdir("/sys/class/net")) if os.path.exists("/sys/class/net") else "no-sysfs")
`, port)
		out := mustOK(t, execIn(t, inst, "", "python3", "-c", script), "net")
		if !strings.Contains(out, "host-loopback ECONNREFUSED") {
			t.Errorf("the host's loopback is reachable: %q", out)
		}
		for _, l := range []string{"outside ENETUNREACH", "private ENETUNREACH", "own-loopback ok"} {
			if !strings.Contains(out, l) {
				t.Errorf("want %q in %q", l, out)
			}
		}
	})

	t.Run("listen_inside", func(t *testing.T) {
		if _, ok := inst.(runtime.Listener); !ok {
			t.Skip("this backend cannot listen inside its sandboxes (no network limits)")
		}
		if _, err := inst.(runtime.Listener).Listen("127.0.0.1:3128"); cove.ErrorCode(err) != cove.CodeConflict {
			t.Errorf("listening in a sandbox made without a network limit: got %v, want conflict", err)
		}
		netInst := create(t, env, cove.Limits{Network: "example.org"})
		ln, err := netInst.(runtime.Listener).Listen("127.0.0.1:3128")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("accepted outside\n"))
			c.Close()
		}()
		script := `
import socket
print(socket.create_connection(("127.0.0.1", 3128), timeout=5).recv(100).decode(), end="")
for host, port in (("8.8.8.8", 53), ("10.0.0.1", 80)):
    try:
        socket.create_connection((host, port), timeout=2); print("reached", host)
    except OSError as e:
        print("unreachable", host)
`
		out := mustOK(t, execIn(t, netInst, "", "python3", "-c", script), "listen")
		if out != "accepted outside\nunreachable 8.8.8.8\nunreachable 10.0.0.1\n" {
			t.Errorf("got %q: the sandbox's connection to its loopback should reach the listener, and nothing else be reachable", out)
		}
	})

	t.Run("stdin_and_exit_codes", func(t *testing.T) {
		r := execIn(t, inst, "hello from stdin", "/bin/sh", "-c", "cat; exit 7")
		if r.stdout != "hello from stdin" || r.res.ExitCode != 7 {
			t.Fatalf("got %q exit %d", r.stdout, r.res.ExitCode)
		}
		r = execIn(t, inst, "", "no-such-command")
		if r.res.StartError == "" || r.res.ExitCode != 127 {
			t.Fatalf("missing command: %+v", r.res)
		}
	})

	t.Run("background_processes_die_with_exec", func(t *testing.T) {
		mustOK(t, sh(t, inst, "sleep 1000 & setsid sleep 1001 & (setsid sh -c 'sleep 1002 &' &) ; echo started"), "bg")
		out := mustOK(t, sh(t, inst, psScript), "ps")
		if strings.Contains(out, "sleep 100") {
			t.Fatalf("background processes outlived their execution:\n%s", out)
		}
	})

	t.Run("concurrent_execs", func(t *testing.T) {
		var wg sync.WaitGroup
		errs := make(chan string, 8)
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				r := sh(t, inst, fmt.Sprintf("sleep 0.2; echo %d", i))
				if strings.TrimSpace(r.stdout) != fmt.Sprint(i) {
					errs <- fmt.Sprintf("exec %d: %q", i, r.stdout)
				}
			}(i)
		}
		wg.Wait()
		close(errs)
		for e := range errs {
			t.Error(e)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		ex, err := inst.Agent().Start(ctx, &agent.ExecSpec{Argv: []string{"sleep", "100"}, Dir: "/workspace", TimeoutMS: 300,
			Env: []string{"PATH=/usr/bin:/bin"}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ex.Close()
		for {
			out, err := ex.Next()
			if err != nil {
				t.Fatal(err)
			}
			if out.Result != nil {
				if !out.Result.TimedOut || out.Result.Signal != 9 {
					t.Fatalf("want timeout by SIGKILL, got %+v", out.Result)
				}
				if out.Result.WallNS > int64(5*time.Second) {
					t.Fatalf("timeout took %v", time.Duration(out.Result.WallNS))
				}
				return
			}
		}
	})

	t.Run("memory_limit", func(t *testing.T) {
		small := create(t, env, cove.Limits{MemoryBytes: 64 << 20})
		r := execIn(t, small, "", "python3", "-c", "b = []\nwhile True: b.append(bytearray(8 << 20))")
		if !r.res.OOMKilled {
			t.Fatalf("want an OOM kill, got %+v stderr %q", r.res, r.stderr)
		}
		// The peak is memory as the limit counts it: it reached the limit
		// and did not pass it (a process's own peak also counts shared
		// pages that the limit does not).
		if r.res.PeakMemory < 48<<20 || r.res.PeakMemory > 64<<20 {
			t.Errorf("peak memory %d MiB under a limit of 64 MiB", r.res.PeakMemory>>20)
		}
		// The sandbox survives its program's OOM kill.
		if out := mustOK(t, sh(t, small, "echo alive"), "after oom"); out != "alive\n" {
			t.Fatalf("got %q", out)
		}
	})

	t.Run("memory_limit_under_a_shell", func(t *testing.T) {
		// The shell is not what the kernel kills: it reports its child's
		// death as exit status 137. The execution ran out of memory all
		// the same, and its verdict must say so.
		small := create(t, env, cove.Limits{MemoryBytes: 64 << 20})
		r := execIn(t, small, "", "/bin/sh", "-c", "python3 -c 'b = bytearray(256 << 20)'; exit $?")
		if !r.res.OOMKilled || r.res.ExitCode != 137 || r.res.Signal != 0 {
			t.Fatalf("want an OOM kill with the shell's exit status 137, got %+v stderr %q", r.res, r.stderr)
		}
		// A program that exits non-zero without running out of memory is
		// not an OOM kill, even right after one.
		r = execIn(t, small, "", "/bin/sh", "-c", "exit 3")
		if r.res.OOMKilled || r.res.ExitCode != 3 {
			t.Fatalf("want exit status 3 and no OOM kill, got %+v", r.res)
		}
	})

	t.Run("destroy_leaves_nothing", func(t *testing.T) {
		ctx := context.Background()
		id := newID()
		inst, err := env.Backend.Create(ctx, runtime.Spec{ID: id, Limits: cove.DefaultLimits()})
		if err != nil {
			t.Fatal(err)
		}
		mustOK(t, sh(t, inst, "sleep 1000 & echo x > /workspace/f"), "setup")
		if err := inst.Destroy(ctx); err != nil {
			t.Fatal(err)
		}
		if err := inst.Destroy(ctx); err != nil {
			t.Fatalf("second destroy: %v", err)
		}
		if env.Leftovers != nil {
			if left := env.Leftovers(id); len(left) > 0 {
				t.Fatalf("leftovers after destroy: %v", left)
			}
		}
	})
}

// psScript lists the command lines of every process in the sandbox.
const psScript = `for p in /proc/[0-9]*; do tr '\0' ' ' < $p/cmdline 2>/dev/null; echo; done`

func grepLine(s, prefix string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return "(missing)"
}
