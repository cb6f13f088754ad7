package main

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/cove-sandbox/cove"
)

func TestCellComplete(t *testing.T) {
	cases := []struct {
		language string
		lines    []string
		want     bool
	}{
		{"python", []string{"x = 1"}, true},
		{"python", []string{"x + 1  # a comment with ( in it"}, true},
		{"python", []string{"def f(x):"}, false},
		{"python", []string{"def f(x):", "    return x"}, false}, // a blank line ends the block
		{"python", []string{"@decorator"}, false},
		{"python", []string{"d = {", "  'a': 1,"}, false},
		{"python", []string{"d = {", "  'a': 1,", "}"}, true},
		{"python", []string{`s = """one`}, false},
		{"python", []string{`s = """one`, `two"""`}, true},
		{"python", []string{"x = 1 + \\"}, false},
		{"python", []string{`print("(")`}, true},
		{"python", []string{`print('it''s')`}, true},
		{"javascript", []string{"let x = 1"}, true},
		{"javascript", []string{"function f() {"}, false},
		{"javascript", []string{"function f() {", "  return 1", "}"}, true},
		{"javascript", []string{"const s = `a"}, false},
		{"javascript", []string{"const s = `a", "b`"}, true},
		{"javascript", []string{"/* open"}, false},
		{"javascript", []string{`console.log("{")  // }`}, true},
		{"typescript", []string{"interface P {", "  x: number", "}"}, true},
		{"typescript", []string{"const f = (a: number) =>", ""}, true},
	}
	for _, c := range cases {
		if got := cellComplete(c.language, c.lines); got != c.want {
			t.Errorf("%s %q: complete = %v, want %v", c.language, c.lines, got, c.want)
		}
	}
}

func TestReplSession(t *testing.T) {
	c := newCLI(t)
	images := t.TempDir()
	in := "x = 6\ndef times(v):\n    return v * 7\n\ntimes(x)\n" +
		"import matplotlib.pyplot as plt\nplt.figure(figsize=(2, 1), dpi=100); plt.plot([1, 2]); plt.show()\n" +
		"1/0\nprint('still', x)\nwhile True: pass\n"
	// The timeout stops the last cell; every cell has it, matplotlib's
	// import too, which takes over a second on a loaded machine.
	r := c.do(in, "repl", "python", "--timeout", "3s", "--images", images)
	if r.code != 0 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	for _, want := range []string{"42\n", "still 6\n", "[image 200x100 saved to " + filepath.Join(images, "cell5-1.png") + "]\n"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
		}
	}
	for _, want := range []string{`File "<cell 6>", line 1`, "ZeroDivisionError: division by zero", "cove: interrupted: wall-clock timeout after 3s (verdict timeout)"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(images, "cell5-1.png")); err != nil {
		t.Error(err)
	}
	r = c.do("const n: number = await Promise.resolve(21)\nn * 2\n", "repl", "ts")
	if r.code != 0 || r.stdout != "42\n" {
		t.Fatalf("typescript: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = c.do("", "repl", "bash")
	if r.code == 0 || !strings.Contains(r.stderr, "cove shell") {
		t.Fatalf("bash: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestReplUnsizedTerminal runs cove repl on a terminal that reports no size,
// as a pty nobody sized does under script or in CI: typed lines must echo
// whole, not one character per line.
func TestReplUnsizedTerminal(t *testing.T) {
	c := newCLI(t)
	cmd := exec.Command(os.Args[0], "repl", "python")
	cmd.Env = append(os.Environ(), "COVE_TEST_AS_CLI=1", "COVE_DATA_DIR="+c.data, "COVE_RUN_DIR="+c.run)
	f, err := pty.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if rows, cols, err := pty.Getsize(f); err != nil || rows != 0 || cols != 0 {
		t.Skipf("the pty has a size already (%dx%d, %v)", cols, rows, err)
	}
	out := newSyncBuffer()
	done := make(chan struct{})
	go func() { io.Copy(out, f); close(done) }()
	time.Sleep(500 * time.Millisecond)
	f.Write([]byte("value = 6 * 7\r"))
	time.Sleep(300 * time.Millisecond)
	f.Write([]byte("value\r"))
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), "42") && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	f.Write([]byte{4}) // Ctrl-D ends the session
	cmd.Wait()
	f.Close()
	<-done
	got := out.String()
	if !strings.Contains(got, "value = 6 * 7") || !strings.Contains(got, "42") {
		t.Fatalf("the session on an unsized terminal:\n%q", got)
	}
}

// cancelOn is a writer that cancels a context when what was written to
// it contains a mark.
type cancelOn struct {
	buf    *syncBuffer
	mark   string
	cancel context.CancelFunc
}

func (c *cancelOn) Write(p []byte) (int, error) {
	c.buf.Write(p)
	if strings.Contains(c.buf.String(), c.mark) {
		c.cancel()
	}
	return len(p), nil
}

// TestReplInterrupted interrupts a piped session (SIGINT, which cancels
// the command's context) while a cell runs: one line says so, with the
// status of Ctrl-C, and the sandbox goes.
func TestReplInterrupted(t *testing.T) {
	c := newCLI(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stdout := &cancelOn{buf: newSyncBuffer(), mark: "started", cancel: cancel}
	stderr := newSyncBuffer()
	in := "import time\nprint('started', flush=True); time.sleep(1000)\nprint('never')\n"
	code := run(ctx, []string{"repl", "python"}, strings.NewReader(in), stdout, stderr, func(k string) string { return c.env[k] })
	if code != 130 || stderr.String() != "cove: interrupted\n" || stdout.buf.String() != "started\n" {
		t.Fatalf("exit %d stdout %q stderr %q, want 130, started and one line saying the session was interrupted", code, stdout.buf.String(), stderr.String())
	}
	if ws, _ := os.ReadDir(filepath.Join(c.data, "volume", "ws")); len(ws) > 0 {
		t.Fatalf("the session's sandbox was left: %v", ws)
	}
}

// TestReplInExistingSandbox checks that --timeout limits each cell of a
// session in a sandbox given with --sandbox, and that the flags which
// only shape a new sandbox are refused there rather than ignored.
func TestReplInExistingSandbox(t *testing.T) {
	srv := newServer(t)
	c := srv.cli(t, srv.admin)
	id := strings.TrimSpace(c.ok("create"))
	r := c.do("import time; time.sleep(5); print('slept')\n", "repl", "python", "--sandbox", id, "--timeout", "1s")
	if r.code != 0 || strings.Contains(r.stdout, "slept") || !strings.Contains(r.stderr, "wall-clock timeout after 1s") {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	for _, args := range [][]string{{"--memory", "64M"}, {"--network", "pypi.org"}, {"--keep"}} {
		r := c.do("", append([]string{"repl", "python", "--sandbox", id}, args...)...)
		if r.code != cove.Codes[cove.CodeInvalid].ExitCode || !strings.Contains(r.stderr, "leave "+args[0]+" out") {
			t.Errorf("%v: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
}
