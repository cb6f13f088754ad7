package main

import (
	"encoding/json"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/wire"
)

func TestExec(t *testing.T) {
	srv := newServer(t)
	c := srv.cli(t, srv.admin)
	id := c.create()
	cases := []struct {
		name           string
		stdin          string
		args           []string
		code           int
		stdout, stderr string // stderr: a regexp
	}{
		{"ok", "", []string{"exec", id, "--", "echo", "hello"}, 0, "hello\n", `^$`},
		{"without_dash", "", []string{"exec", id, "echo", "a b"}, 0, "a b\n", `^$`},
		{"exit_status", "", []string{"exec", id, "--", "sh", "-c", "echo out; echo err >&2; exit 3"}, 3, "out\n", `^err\n$`},
		{"cwd_and_env", "", []string{"exec", "--cwd", "/tmp", "--env", "X=1", "-e", "Y=two", id, "--", "sh", "-c", "echo $PWD $X $Y"}, 0, "/tmp 1 two\n", `^$`},
		{"default_cwd", "", []string{"exec", id, "--", "pwd"}, 0, "/workspace\n", `^$`},
		{"stdin", "one\ntwo\n", []string{"exec", "-i", id, "--", "wc", "-l"}, 0, "2\n", `^$`},
		{"no_stdin_without_i", "one\ntwo\n", []string{"exec", id, "--", "wc", "-l"}, 0, "0\n", `^$`},
		{"timeout", "", []string{"exec", "--timeout", "1s", id, "--", "sleep", "10"}, 137, "", `^cove: killed: wall-clock timeout after 1s\n$`},
		{"signal", "", []string{"exec", id, "--", "sh", "-c", "kill -TERM $$"}, 143, "", `^cove: killed by SIGTERM\n$`},
		{"bad_env", "", []string{"exec", "--env", "NOEQUALS", id, "--", "true"}, 125, "", `^cove: --env "NOEQUALS": use KEY=VALUE\n$`},
		// After the id, the command's flags are the command's, even
		// those that cove has too (-i, -e, --json, --cwd), without --.
		{"command_flags_without_dash", "", []string{"exec", id, "sh", "-c", "echo \"$@\"", "sh", "-i", "-e", "A=1", "--json", "--cwd", "/tmp"}, 0, "-i -e A=1 --json --cwd /tmp\n", `^$`},
		{"command_flags_with_dash", "", []string{"exec", id, "--", "sh", "-c", "echo \"$@\" $PWD", "sh", "-e", "x"}, 0, "-e x /workspace\n", `^$`},
		// cove's flags may go between the id and --.
		{"flags_between_id_and_dash", "", []string{"exec", id, "--cwd", "/tmp", "-e", "X=1", "--", "sh", "-c", "echo $PWD $X"}, 0, "/tmp 1\n", `^$`},
		{"bad_flag_between_id_and_dash", "", []string{"exec", id, "--env", "NOEQUALS", "--", "true"}, 125, "", `^cove: --env "NOEQUALS": use KEY=VALUE\n$`},
		{"bool_flag_after_id_without_dash", "", []string{"exec", id, "-i", "cat"}, 125, "", `^cove: -i after the sandbox id: cove's flags go before the id \(cove exec -i ID CMD\.\.\.\)`},
		{"arg_between_id_and_dash", "", []string{"exec", id, "-e", "X=1", "extra", "--", "true"}, 125, "", `^cove: too many arguments before --: "extra" is no flag of cove exec`},
		{"flag_after_id_without_dash", "", []string{"exec", id, "--cwd", "/tmp", "pwd"}, 125, "", `^cove: --cwd after the sandbox id: cove's flags go before the id \(cove exec --cwd /tmp ID CMD\.\.\.\), or between the id and -- \(cove exec ID --cwd /tmp -- CMD\.\.\.\); a command's own flags go after it\n$`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := c.do(tc.stdin, tc.args...)
			if r.code != tc.code || r.stdout != tc.stdout || !regexp.MustCompile(tc.stderr).MatchString(r.stderr) {
				t.Fatalf("exit %d stdout %q stderr %q; want exit %d stdout %q stderr matching %s", r.code, r.stdout, r.stderr, tc.code, tc.stdout, tc.stderr)
			}
		})
	}

	t.Run("json", func(t *testing.T) {
		r := c.do("", "exec", "--json", id, "--", "sh", "-c", "echo out; echo err >&2; exit 2")
		var w wire.Result
		if err := json.Unmarshal([]byte(r.stdout), &w); err != nil {
			t.Fatalf("%v: %q", err, r.stdout)
		}
		res, err := w.Cove()
		if err != nil {
			t.Fatal(err)
		}
		if r.code != 2 || res.Verdict != cove.VerdictExitNonzero || res.ExitCode != 2 || res.Stdout != "out\n" || res.Stderr != "err\n" || res.WallMS <= 0 {
			t.Fatalf("exit %d: %+v", r.code, res)
		}
	})

	// Standard input streams to the server rather than being read whole
	// into a JSON request, which the server caps at 1 MiB.
	t.Run("large_stdin", func(t *testing.T) {
		in := strings.Repeat("0123456789abcdef", 3<<20/16)
		r := c.do(in, "exec", "-i", id, "--", "wc", "-c")
		if r.code != 0 || r.stdout != strconv.Itoa(len(in))+"\n" {
			t.Fatalf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
		}
		r = c.do(in, "run", "-i", "-l", "bash", "-c", "wc -c")
		if r.code != 0 || r.stdout != strconv.Itoa(len(in))+"\n" {
			t.Fatalf("run: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("interactive_stdin", func(t *testing.T) {
		pr, pw := io.Pipe()
		out := newSyncBuffer()
		done := make(chan int)
		go func() {
			done <- c.stream(pr, out, io.Discard, "exec", "-i", id, "--", "sh", "-c", "while read l; do echo got $l; done")
		}()
		io.WriteString(pw, "one\n")
		// The answer to the first line comes while stdin is still open.
		select {
		case <-out.first:
		case code := <-done:
			t.Fatalf("exit %d before any output", code)
		case <-time.After(10 * time.Second):
			t.Fatal("no answer to the first line of stdin")
		}
		io.WriteString(pw, "two\n")
		pw.Close()
		if code := <-done; code != 0 || out.String() != "got one\ngot two\n" {
			t.Fatalf("exit %d output %q", code, out.String())
		}
	})

	t.Run("streaming_order", func(t *testing.T) {
		out := newSyncBuffer()
		code := c.stream(strings.NewReader(""), out, out, "exec", id, "--", "sh", "-c",
			"echo one; sleep 0.2; echo two >&2; sleep 0.2; echo three; sleep 0.2; echo four >&2")
		if code != 0 || out.String() != "one\ntwo\nthree\nfour\n" {
			t.Fatalf("exit %d, output in the order %q", code, out.String())
		}
	})

	t.Run("streams_live", func(t *testing.T) {
		out := newSyncBuffer()
		done := make(chan int)
		start := time.Now()
		go func() {
			done <- c.stream(strings.NewReader(""), out, io.Discard, "exec", id, "--", "sh", "-c", "echo early; sleep 2; echo late")
		}()
		select {
		case <-out.first:
			if d := time.Since(start); d > 1500*time.Millisecond {
				t.Fatalf("the first line came after %v, with the end of the command", d)
			}
		case code := <-done:
			t.Fatalf("exit %d before any output was written", code)
		case <-time.After(10 * time.Second):
			t.Fatal("no output")
		}
		if code := <-done; code != 0 || out.String() != "early\nlate\n" {
			t.Fatalf("exit %d output %q", code, out.String())
		}
	})
}

func TestShellPipeMode(t *testing.T) {
	srv := newServer(t)
	c := srv.cli(t, srv.admin)
	id := c.create()
	cases := []struct {
		name  string
		stdin string
		args  []string
		code  int
		want  string // in stdout
	}{
		{"exit_status", "echo shell-$((6*7))\nexit 3\n", []string{"shell", id}, 3, "shell-42"},
		{"end_of_input_ends_it", "echo bye-$((1+1))\n", []string{"shell", id}, 0, "bye-2"},
		{"a_terminal", "tty\nexit\n", []string{"shell", id}, 0, "/dev/pts/"},
		{"command", "", []string{"shell", "--cwd", "/tmp", id, "--", "sh", "-c", "echo in $PWD; exit 4"}, 4, "in /tmp"},
		{"interactive_program", "print(6*7)\nexit()\n", []string{"shell", id, "--", "python3", "-q"}, 0, "42"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := c.do(tc.stdin, tc.args...)
			if r.code != tc.code || !strings.Contains(r.stdout, tc.want) {
				t.Fatalf("exit %d stdout %q stderr %q; want exit %d and %q", r.code, r.stdout, r.stderr, tc.code, tc.want)
			}
		})
	}
}

// openTerminal opens a pseudo-terminal pair on this machine, to stand for
// the user's terminal.
func openTerminal(t *testing.T) (master, tty *os.File) {
	t.Helper()
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	if err := unix.IoctlSetPointerInt(int(m.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(m.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	s, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return m, s
}

// TestShellTerminal runs cove shell on a terminal: raw mode while it runs,
// the size and its changes passed on, the terminal restored afterwards.
func TestShellTerminal(t *testing.T) {
	srv := newServer(t)
	c := srv.cli(t, srv.admin)
	id := c.create()
	master, tty := openTerminal(t)
	if err := unix.IoctlSetWinsize(int(tty.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 40, Col: 120}); err != nil {
		t.Fatal(err)
	}
	before, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}

	var out syncBuffer
	out.mu, out.first = make(chan struct{}, 1), make(chan struct{})
	go io.Copy(&out, master)
	done := make(chan int)
	go func() {
		done <- c.stream(tty, tty, io.Discard, "shell", id, "--", "sh", "-c", "stty size; read x; stty size; echo got:$x; exit 5")
	}()
	waitFor := func(s string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(out.String(), s) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q in %q", s, out.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("40 120")
	raw, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if raw.Lflag&(unix.ICANON|unix.ECHO) != 0 {
		t.Fatalf("the terminal is not in raw mode while the shell runs: lflag %#x", raw.Lflag)
	}
	unix.IoctlSetWinsize(int(tty.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: 50, Col: 100})
	// The kernel signals the terminal's foreground process, which a test
	// is not; signal cove as it would be.
	syscall.Kill(os.Getpid(), syscall.SIGWINCH)
	time.Sleep(300 * time.Millisecond)
	master.Write([]byte("hello\r"))
	waitFor("got:hello")
	if code := <-done; code != 5 {
		t.Fatalf("exit %d, output %q", code, out.String())
	}
	if !strings.Contains(out.String(), "50 100") {
		t.Fatalf("the new size did not reach the sandbox: %q", out.String())
	}
	after, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	if *after != *before {
		t.Fatalf("the terminal was not restored: %+v, was %+v", after, before)
	}
}
