package service

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/runtime/native/nativetest"
)

// hostileCase is one entry of testdata/hostile/manifest.json.
type hostileCase struct {
	Name     string            `json:"name"`
	File     string            `json:"file"`
	Language string            `json:"language"`
	Kind     string            `json:"kind"`
	Limits   map[string]any    `json:"limits"`
	Argv     []string          `json:"argv"`
	Env      map[string]string `json:"env"`
	Expect   struct {
		Verdicts        []cove.Verdict `json:"verdicts"`
		ExitCode        *int           `json:"exit_code"`
		Signal          string         `json:"signal"`
		StdoutRegex     string         `json:"stdout_regex"`
		StderrRegex     string         `json:"stderr_regex"`
		StdoutTruncated *bool          `json:"stdout_truncated"`
		StderrTruncated *bool          `json:"stderr_truncated"`
		WallMax         string         `json:"wall_max"`
		Numbers         []struct {
			Stream string  `json:"stream"`
			Regex  string  `json:"regex"`
			Min    float64 `json:"min"`
			Max    float64 `json:"max"`
		} `json:"numbers"`
		NoLeftoverProcesses bool `json:"no_leftover_processes"`
	} `json:"expect"`
}

func (c *hostileCase) limits(t *testing.T) cove.Limits {
	var l cove.Limits
	for k, v := range c.Limits {
		s := fmt.Sprint(v)
		var err error
		switch k {
		case "memory":
			l.MemoryBytes, err = cove.ParseBytes(s)
		case "disk":
			l.DiskBytes, err = cove.ParseBytes(s)
		case "output":
			l.OutputBytes, err = cove.ParseBytes(s)
		case "tmp":
			l.TmpBytes, err = cove.ParseBytes(s)
		case "timeout":
			l.Timeout, err = time.ParseDuration(s)
		case "pids":
			l.Pids, err = strconv.Atoi(s)
		case "open_files":
			l.OpenFiles, err = strconv.Atoi(s)
		case "cpus":
			l.CPUs, err = strconv.ParseFloat(s, 64)
		case "file_size":
			l.FileBytes, err = cove.ParseBytes(s)
		case "network":
			l.Network = s // {{HOST_PORT}} in it is filled in by the runner
		default:
			t.Fatalf("%s: unknown limit %q", c.Name, k)
		}
		if err != nil {
			t.Fatalf("%s: limit %s: %v", c.Name, k, err)
		}
	}
	return l
}

// leftoverScript lists the sandbox's processes other than PID 1 and itself.
const leftoverScript = `
import os
me = os.getpid()
for p in sorted(os.listdir("/proc")):
    if not p.isdigit() or int(p) in (1, me):
        continue
    try:
        print(p, open(f"/proc/{p}/cmdline", "rb").read().replace(b"\0", b" ").decode())
    except OSError:
        pass
`

// hostileCases reads testdata/hostile/manifest.json; dir holds the
// programs.
func hostileCases(t *testing.T) (dir string, cases []hostileCase) {
	t.Helper()
	dir = filepath.Join("..", "..", "testdata", "hostile")
	raw, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatalf("manifest: %v", err)
	}
	return dir, cases
}

// TestHostileSuite runs every program of testdata/hostile in a real sandbox
// and checks the outcome the manifest expects; then that the host is
// unharmed and nothing was left behind.
func TestHostileSuite(t *testing.T) {
	svc, dirs := newTestService(t)
	dir, cases := hostileCases(t)
	if len(cases) < 30 {
		t.Fatalf("the hostile suite has %d programs, want at least 30", len(cases))
	}
	// A server on the host's loopback that no sandbox may reach.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	reached := make(chan string, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			reached <- c.RemoteAddr().String()
			c.Close()
		}
	}()
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	// An abstract unix socket in the host's network namespace: abstract
	// names are per network namespace, so no sandbox may reach it.
	abstract := fmt.Sprintf("cove-hostile-%d", os.Getpid())
	aln, err := net.Listen("unix", "@"+abstract)
	if err != nil {
		t.Fatal(err)
	}
	defer aln.Close()
	go func() {
		for {
			c, err := aln.Accept()
			if err != nil {
				return
			}
			reached <- "abstract unix socket"
			c.Close()
		}
	}()
	subst := strings.NewReplacer("{{HOST_PORT}}", port, "{{HOST_ABSTRACT}}", abstract, "{{HOST_DATA_DIR}}", dirs.Data)

	var created sync.Map
	t.Run("programs", func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.Name, func(t *testing.T) {
				t.Parallel()
				runHostile(t, svc, dir, c, subst, &created)
			})
		}
	})
	select {
	case from := <-reached:
		t.Errorf("a sandbox reached the host's loopback server (from %s)", from)
	default:
	}
	if list, _ := svc.ListSandboxes(context.Background(), cove.ListOptions{}); len(list.Sandboxes) != 0 {
		t.Errorf("%d sandboxes left", len(list.Sandboxes))
	}
	// Every process of a sandbox lives in its cgroups; none may be left.
	created.Range(func(id, _ any) bool {
		if left, _ := filepath.Glob("/sys/fs/cgroup/*/cove/" + id.(string)); len(left) > 0 {
			t.Errorf("sandbox %s left cgroups behind: %v", id, left)
		}
		return true
	})
}

// runHostile runs one program in a sandbox of its own, recorded in created.
func runHostile(t *testing.T, svc *Service, dir string, c hostileCase, subst *strings.Replacer, created *sync.Map) {
	src, err := os.ReadFile(filepath.Join(dir, c.File))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	limits := c.limits(t)
	limits.Network = subst.Replace(limits.Network)
	sb, err := svc.CreateSandbox(ctx, cove.SandboxSpec{Limits: limits})
	if err != nil {
		t.Fatal(err)
	}
	created.Store(sb.ID, true)
	defer svc.DeleteSandbox(context.Background(), sb.ID)
	argv := slices.Clone(c.Argv)
	for i := range argv {
		argv[i] = subst.Replace(argv[i])
	}
	st, err := svc.RunCode(ctx, sb.ID, cove.CodeRequest{Language: c.Language, Code: string(src), Filename: c.File, Argv: argv, Env: c.Env})
	if err != nil {
		t.Fatal(err)
	}
	res, err := cove.Collect(st)
	if err != nil {
		t.Fatal(err)
	}
	show := func() string {
		return fmt.Sprintf("verdict %s exit %d signal %s message %q\nstdout: %s\nstderr: %s", res.Verdict, res.ExitCode, res.Signal, res.Message, clip(res.Stdout), clip(res.Stderr))
	}
	if len(c.Expect.Verdicts) > 0 && !slices.Contains(c.Expect.Verdicts, res.Verdict) {
		t.Errorf("want verdict in %v, got %s", c.Expect.Verdicts, show())
	}
	if c.Expect.ExitCode != nil && *c.Expect.ExitCode != res.ExitCode {
		t.Errorf("want exit code %d, got %s", *c.Expect.ExitCode, show())
	}
	if c.Expect.Signal != "" && c.Expect.Signal != res.Signal {
		t.Errorf("want signal %s, got %s", c.Expect.Signal, show())
	}
	if w := c.Expect.StdoutTruncated; w != nil && *w != res.StdoutTruncated {
		t.Errorf("want stdout truncated=%v, got %s", *w, show())
	}
	if w := c.Expect.StderrTruncated; w != nil && *w != res.StderrTruncated {
		t.Errorf("want stderr truncated=%v, got %s", *w, show())
	}
	if c.Expect.WallMax != "" {
		max, err := time.ParseDuration(c.Expect.WallMax)
		if err != nil {
			t.Fatalf("wall_max: %v", err)
		}
		if time.Duration(res.WallMS)*time.Millisecond > max {
			t.Errorf("ran %d ms, more than %s: %s", res.WallMS, max, show())
		}
	}
	for _, n := range c.Expect.Numbers {
		text := res.Stdout
		if n.Stream == "stderr" {
			text = res.Stderr
		}
		m := regexp.MustCompile(n.Regex).FindStringSubmatch(text)
		if len(m) < 2 {
			t.Errorf("no number matching %s: %s", n.Regex, show())
			continue
		}
		v, err := strconv.ParseFloat(m[1], 64)
		if err != nil || v < n.Min || v > n.Max {
			t.Errorf("%s: %s is outside [%g, %g]: %s", n.Regex, m[1], n.Min, n.Max, show())
		}
	}
	if re := c.Expect.StdoutRegex; re != "" && !regexp.MustCompile(re).MatchString(res.Stdout) {
		t.Errorf("stdout does not match %s: %s", re, show())
	}
	if re := c.Expect.StderrRegex; re != "" && !regexp.MustCompile(re).MatchString(res.Stderr) {
		t.Errorf("stderr does not match %s: %s", re, show())
	}
	if c.Expect.NoLeftoverProcesses || c.Kind == "resource" {
		// The execution's end killed what it left; the agent, PID 1,
		// reaps them as they die, which may be just after the result
		// (a fork bomb leaves hundreds): a process still there 2 s later
		// was left behind.
		var left *cove.ExecResult
		for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(100 * time.Millisecond) {
			st, err := svc.Exec(ctx, sb.ID, cove.ExecRequest{Cmd: []string{"python3", "-c", leftoverScript}})
			if err != nil {
				t.Fatal(err)
			}
			if left, err = cove.Collect(st); err != nil {
				t.Fatal(err)
			}
			if strings.TrimSpace(left.Stdout) == "" && left.Verdict == cove.VerdictOK || time.Now().After(deadline) {
				break
			}
		}
		if strings.TrimSpace(left.Stdout) != "" || left.Verdict != cove.VerdictOK {
			t.Errorf("processes left in the sandbox after the program ended (%s):\n%s%s", left.Verdict, left.Stdout, left.Stderr)
		}
	}
}

func clip(s string) string {
	if len(s) > 2000 {
		return s[:2000] + "...(clipped)"
	}
	return s
}

// pristineScript tells the sandbox's boot time (the agent's start, in clock
// ticks) and, with builtins only so that it sees no process of its own but
// its shell, what a new sandbox must not hold: files in the writable
// directories, changed owners or modes, processes, System V IPC objects.
const pristineScript = `cd /
read -r -a st < /proc/1/stat
echo "boot ${st[21]}"
shopt -s dotglob nullglob
for d in /workspace /tmp /dev/shm; do
  for f in "$d"/*; do [ "$f" = /workspace/check.sh ] || echo "left: $f"; done
done
for p in /proc/[0-9]*; do case ${p#/proc/} in 1|$$) ;; *) echo "process: $p";; esac; done
for k in shm sem msg; do mapfile -t l < /proc/sysvipc/$k; [ ${#l[@]} -le 1 ] || echo "ipc: $k ${#l[@]}"; done
`

// TestHostileThenReuse runs every program of testdata/hostile as a one-call
// run in a service that resets and keeps those sandboxes, each program for
// a key of its own, and then a run of the same key and limits that must
// find its sandbox pristine, whether it got the hostile program's sandbox,
// reset, or a new one because the reset was refused.
func TestHostileThenReuse(t *testing.T) {
	be, dirs := nativetest.New(t)
	svc := New(be, Options{Defaults: cove.DefaultLimits(), RunReuse: 1, RunReuseIdle: time.Second, ReapInterval: 100 * time.Millisecond})
	t.Cleanup(func() { svc.Close(context.Background()) })
	if err := svc.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	dir, cases := hostileCases(t)
	subst := strings.NewReplacer("{{HOST_PORT}}", "9", "{{HOST_ABSTRACT}}", "cove-none", "{{HOST_DATA_DIR}}", dirs.Data)
	var reused atomic.Int64
	t.Run("programs", func(t *testing.T) {
		for _, c := range cases {
			t.Run(c.Name, func(t *testing.T) {
				t.Parallel()
				if hostileThenCheck(t, svc, dir, c, subst) {
					reused.Add(1)
				}
			})
		}
	})
	t.Logf("%d of %d hostile programs left a sandbox that was reset and reused", reused.Load(), len(cases))
	// Most programs end with nothing a reset refuses: the reset itself
	// must have been put to the test.
	if n := reused.Load(); n < int64(len(cases))/2 {
		t.Errorf("only %d of %d sandboxes were reused after their hostile program", n, len(cases))
	}
}

// hostileThenCheck runs a check, c's program and the check again, as one
// key with c's limits, and reports whether the last check had the
// sandbox the program ran in.
func hostileThenCheck(t *testing.T, svc *Service, dir string, c hostileCase, subst *strings.Replacer) bool {
	src, err := os.ReadFile(filepath.Join(dir, c.File))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ctx = cove.WithKey(ctx, &cove.Key{ID: "hostile-" + c.Name})
	limits := c.limits(t)
	limits.Network = subst.Replace(limits.Network)
	check := func(what string) string {
		// The check's own timeout and output cap: they do not change
		// which sandbox it gets.
		l := limits
		l.Timeout, l.OutputBytes = 20*time.Second, 64<<10
		res := runIn(t, ctx, svc, cove.RunRequest{CodeRequest: cove.CodeRequest{Language: "bash", Code: pristineScript, Filename: "check.sh"}, Limits: l})
		boot, rest, _ := strings.Cut(res.Stdout, "\n")
		if res.Verdict != cove.VerdictOK || !strings.HasPrefix(boot, "boot ") || rest != "" {
			t.Fatalf("%s: the sandbox was not pristine (%s): %q %q", what, res.Verdict, res.Stdout, res.Stderr)
		}
		return boot
	}
	awaitKeptFor := func() {
		// The reset follows the answer; give it its moment.
		for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if svc.runners.has(keyOf("hostile-"+c.Name, limits.WithDefaults(svc.defaults))) {
				return
			}
		}
	}
	before := check("the check before the program")
	awaitKeptFor()
	argv := slices.Clone(c.Argv)
	for i := range argv {
		argv[i] = subst.Replace(argv[i])
	}
	runIn(t, ctx, svc, cove.RunRequest{CodeRequest: cove.CodeRequest{Language: c.Language, Code: string(src), Filename: c.File, Argv: argv, Env: c.Env}, Limits: limits})
	awaitKeptFor()
	return check("the check after the program") == before
}
