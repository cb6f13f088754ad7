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
	"testing"
	"time"

	"github.com/cove-sandbox/cove"
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

// TestHostileSuite runs every program of testdata/hostile in a real sandbox
// and checks the outcome the manifest expects; then that the host is
// unharmed and nothing was left behind.
func TestHostileSuite(t *testing.T) {
	svc, dirs := newTestService(t)
	dir := filepath.Join("..", "..", "testdata", "hostile")
	raw, err := os.ReadFile(filepath.Join(dir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []hostileCase
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatalf("manifest: %v", err)
	}
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
	sb, err := svc.CreateSandbox(ctx, cove.SandboxSpec{Limits: c.limits(t)})
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
		st, err := svc.Exec(ctx, sb.ID, cove.ExecRequest{Cmd: []string{"python3", "-c", leftoverScript}})
		if err != nil {
			t.Fatal(err)
		}
		left, err := cove.Collect(st)
		if err != nil {
			t.Fatal(err)
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
