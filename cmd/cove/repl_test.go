package main

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

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
	if r.code != 1 { // cells failed
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
	// A syntax error is said once: the traceback's last line.
	r = c.do("if True:\nprint(1)\n\n", "repl", "python")
	if n := strings.Count(r.stderr, "IndentationError"); n != 1 || !strings.Contains(r.stderr, `File "<cell 1>", line 2`) {
		t.Errorf("a syntax error, said %d times:\n%s", n, r.stderr)
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
	if r.code != 1 || strings.Contains(r.stdout, "slept") || !strings.Contains(r.stderr, "wall-clock timeout after 1s") {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	for _, args := range [][]string{{"--memory", "64M"}, {"--network", "pypi.org"}, {"--keep"}} {
		r := c.do("", append([]string{"repl", "python", "--sandbox", id}, args...)...)
		if r.code != cove.Codes[cove.CodeInvalid].ExitCode || !strings.Contains(r.stderr, "leave "+args[0]+" out") {
			t.Errorf("%v: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
}

// onTerminal is a cove command running on a pseudo-terminal, as in a
// user's terminal emulator.
type onTerminal struct {
	t        *testing.T
	cmd      *exec.Cmd
	pty, tty *os.File
	out      *syncBuffer
	exited   chan struct{}
}

// startOnTerminal starts cove with args and the environment env on a new
// pseudo-terminal of cols by rows (0: unsized). The test keeps the
// terminal's other end open, to look at its mode after cove exits.
func startOnTerminal(t *testing.T, env []string, cols, rows int, args ...string) *onTerminal {
	t.Helper()
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Fatal(err)
	}
	if cols > 0 {
		if err := pty.Setsize(ptmx, &pty.Winsize{Cols: uint16(cols), Rows: uint16(rows)}); err != nil {
			t.Fatal(err)
		}
	}
	o := &onTerminal{t: t, pty: ptmx, tty: tty, out: newSyncBuffer(), exited: make(chan struct{})}
	o.cmd = exec.Command(os.Args[0], args...)
	o.cmd.Env = append(append(os.Environ(), "COVE_TEST_AS_CLI=1"), env...)
	o.cmd.Stdin, o.cmd.Stdout, o.cmd.Stderr = tty, tty, tty
	o.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true}
	if err := o.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go io.Copy(o.out, ptmx)
	go func() { o.cmd.Wait(); close(o.exited) }()
	t.Cleanup(func() {
		o.cmd.Process.Kill()
		<-o.exited
		ptmx.Close()
		tty.Close()
	})
	return o
}

// replOnTerminal starts cove repl python on a terminal of 80 by 24 and
// waits for its first prompt.
func replOnTerminal(t *testing.T, c *cli) *onTerminal {
	t.Helper()
	o := startOnTerminal(t, []string{"COVE_DATA_DIR=" + c.data, "COVE_RUN_DIR=" + c.run}, 80, 24, "repl", "python")
	o.waitFor(">>> ", 1)
	return o
}

// waitFor waits until the output holds s n times.
func (o *onTerminal) waitFor(s string, n int) {
	o.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(o.out.String(), s) < n {
		if time.Now().After(deadline) {
			o.t.Fatalf("no %d× %q in the output:\n%q", n, s, o.out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// typeKeys types s, after a pause: keys typed at once reach cove at once.
func (o *onTerminal) typeKeys(s string) {
	time.Sleep(100 * time.Millisecond)
	if _, err := o.pty.Write([]byte(s)); err != nil {
		o.t.Fatal(err)
	}
}

// exitCode waits for cove to exit and returns its status.
func (o *onTerminal) exitCode(within time.Duration) int {
	o.t.Helper()
	select {
	case <-o.exited:
	case <-time.After(within):
		o.t.Fatalf("still running after %v; the output:\n%q", within, o.out.String())
	}
	return o.cmd.ProcessState.ExitCode()
}

// cooked reports whether the terminal is back in its ordinary mode: lines
// edited by the terminal, and echoed.
func (o *onTerminal) cooked() bool {
	tio, err := unix.IoctlGetTermios(int(o.tty.Fd()), unix.TCGETS)
	if err != nil {
		o.t.Fatal(err)
	}
	return tio.Lflag&unix.ICANON != 0 && tio.Lflag&unix.ECHO != 0
}

// TestReplCtrlC types Ctrl-C at the prompt: it clears the line (empty,
// with text, at a continuation prompt, several in a row) and the session
// goes on with its variables; Ctrl-D on an empty line ends it.
func TestReplCtrlC(t *testing.T) {
	c := newCLI(t)
	o := replOnTerminal(t, c)
	o.typeKeys("x = 6\r")
	o.waitFor(">>> ", 2)
	for _, keys := range []string{"\x03", "y = 1\x03", "\x03", "\x03", "def f():\r\x03", "undefined\x1b[D\x1b[D\x03"} {
		o.typeKeys(keys)
	}
	o.typeKeys("x * 7\r")
	o.waitFor("42", 1)
	o.typeKeys("y\r")
	o.waitFor("NameError", 1)
	o.waitFor(">>> ", 10)
	o.typeKeys("\x04")
	if code := o.exitCode(20 * time.Second); code != 0 {
		t.Fatalf("exit %d after Ctrl-D; the output:\n%q", code, o.out.String())
	}
	got := o.out.String()
	for _, want := range []string{">>> ^C\r\n>>> ", ">>> y = 1^C\r\n", "... ^C\r\n", ">>> undefined\x1b[D\x1b[D\x1b[2C^C\r\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("the output lacks %q:\n%q", want, got)
		}
	}
	if n := strings.Count(got, "^C"); n != 6 {
		t.Errorf("%d × ^C in the output, want 6:\n%q", n, got)
	}
	if !o.cooked() {
		t.Error("the terminal was left in raw mode")
	}
}

// TestReplSignals ends a session waiting at its prompt with SIGTERM and
// with SIGHUP: it ends at once, with the signal's status, removes the
// sandbox it made and gives the terminal back as it was.
func TestReplSignals(t *testing.T) {
	for _, tc := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGTERM, 143}, {syscall.SIGHUP, 129}} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			c := newCLI(t)
			o := replOnTerminal(t, c)
			o.typeKeys("x = 1\r")
			o.waitFor(">>> ", 2)
			o.cmd.Process.Signal(tc.sig)
			if code := o.exitCode(10 * time.Second); code != tc.code {
				t.Errorf("exit %d, want %d; the output:\n%q", code, tc.code, o.out.String())
			}
			if !o.cooked() {
				t.Error("the terminal was left in raw mode")
			}
			if ws, _ := os.ReadDir(filepath.Join(c.data, "volume", "ws")); len(ws) > 0 {
				t.Errorf("the session's sandbox was left: %v", ws)
			}
		})
	}
}

// TestReplFollowsWindowSize widens the terminal during a session: a line
// longer than the old width is not broken where the old width ended.
func TestReplFollowsWindowSize(t *testing.T) {
	c := newCLI(t)
	o := startOnTerminal(t, []string{"COVE_DATA_DIR=" + c.data, "COVE_RUN_DIR=" + c.run}, 20, 24, "repl", "python")
	o.waitFor(">>> ", 1)
	if err := pty.Setsize(o.pty, &pty.Winsize{Cols: 120, Rows: 24}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // for SIGWINCH to arrive
	line := "total = 1 + 2 + 3 + 4 + 5 + 6 + 7 + 8"
	o.typeKeys(line + "\r")
	o.typeKeys("total\r")
	o.waitFor("36", 1)
	if !strings.Contains(o.out.String(), ">>> "+line+"\r\n") {
		t.Fatalf("the line was not echoed whole on a terminal widened to 120 columns:\n%q", o.out.String())
	}
}

// TestReplSandboxGone removes, or stops, the sandbox of a session given
// with --sandbox: the next cell ends the session with a message that
// says so and a non-zero status, rather than failing every cell after.
func TestReplSandboxGone(t *testing.T) {
	srv := newServer(t)
	for _, tc := range []struct {
		command string
		code    cove.Code
		says    string
	}{{"rm", cove.CodeNotFound, "is gone"}, {"stop", cove.CodeConflict, "is stopped"}} {
		t.Run(tc.command, func(t *testing.T) {
			c := srv.cli(t, srv.admin)
			id := strings.TrimSpace(c.ok("create"))
			in, typed := io.Pipe()
			stdout, stderr := newSyncBuffer(), newSyncBuffer()
			done := make(chan int)
			go func() {
				done <- run(t.Context(), []string{"repl", "python", "--sandbox", id}, in, stdout, stderr, func(k string) string { return c.env[k] })
			}()
			io.WriteString(typed, "print('ready')\n")
			for !strings.Contains(stdout.String(), "ready") {
				time.Sleep(20 * time.Millisecond)
			}
			c.ok(tc.command, id)
			io.WriteString(typed, "print('after')\n")
			select {
			case code := <-done:
				if code != cove.Codes[tc.code].ExitCode || !strings.Contains(stderr.String(), "sandbox "+id+" "+tc.says) || strings.Count(stderr.String(), "\n") != 1 {
					t.Errorf("exit %d, stderr %q; want %d and one line saying the sandbox %s", code, stderr.String(), cove.Codes[tc.code].ExitCode, tc.says)
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("the session goes on; stderr %q", stderr.String())
			}
			typed.Close()
		})
	}
}

// TestReplPipedStatus checks the exit status of piped sessions: 1 when a
// cell failed, 0 when none did.
func TestReplPipedStatus(t *testing.T) {
	c := newCLI(t)
	for _, tc := range []struct {
		in   string
		code int
	}{{"1/0\n", 1}, {"x = 1\n1/0\nprint(x)\n", 1}, {"print(1)\n", 0}, {"raise SystemExit(3)\nprint(2)\n", 1}} {
		if r := c.do(tc.in, "repl", "python"); r.code != tc.code {
			t.Errorf("%q: exit %d, want %d (stderr %q)", tc.in, r.code, tc.code, r.stderr)
		}
	}
}

// closedAfter is standard output piped into `head -1`: the first write
// goes through, and every write after fails as on a closed pipe.
type closedAfter struct {
	writes []string
}

func (w *closedAfter) Write(p []byte) (int, error) {
	w.writes = append(w.writes, string(p))
	if len(w.writes) > 1 {
		return 0, syscall.EPIPE
	}
	return len(p), nil
}

// TestReplClosedOutput pipes a session into a reader that goes away: the
// session stops there, with the status of a closed pipe, and runs no
// more cells.
func TestReplClosedOutput(t *testing.T) {
	c := newCLI(t)
	stdout := &closedAfter{}
	var stderr strings.Builder
	code := run(t.Context(), []string{"repl", "python"}, strings.NewReader("print('one')\nprint('two')\nprint('three')\n"), stdout, &stderr, func(k string) string { return c.env[k] })
	if code != brokenPipeStatus || stderr.String() != "" {
		t.Errorf("exit %d, stderr %q; want %d and nothing", code, stderr.String(), brokenPipeStatus)
	}
	if len(stdout.writes) != 2 {
		t.Errorf("writes after the output closed: %q", stdout.writes)
	}
}

// TestReplUnknownLanguage lists only the languages with a REPL.
func TestReplUnknownLanguage(t *testing.T) {
	r := (&cli{t: t}).do("", "repl", "ruby")
	if r.code != cove.Codes[cove.CodeInvalid].ExitCode || !strings.Contains(r.stderr, "python") || strings.Contains(r.stderr, "bash") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
}
