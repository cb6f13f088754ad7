package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/egress/egresstest"
	"github.com/cove-sandbox/cove/internal/wire"
)

func TestRunLanguages(t *testing.T) {
	c := newCLI(t)
	hello := writeFile(t, "hello.py", "import sys\nprint('hello', sys.argv[1:])\n")
	ts := writeFile(t, "main.ts", "interface P { x: number }\nconst p: P = { x: 21 }\nconsole.log(p.x * 2)\n")
	tool := writeFile(t, "tool", "#!/usr/bin/env node\nconsole.log(process.argv.slice(2).join('+'))\n")
	cases := []struct {
		name  string
		stdin string
		args  []string
		want  string
	}{
		{"python_file_argv", "", []string{"run", hello, "--", "a", "b c"}, "hello ['a', 'b c']\n"},
		{"python_code", "", []string{"run", "-l", "python", "-c", "print(6*7)"}, "42\n"},
		{"python_alias", "", []string{"run", "-l", "py", "-c", "print('py')"}, "py\n"},
		{"javascript_stdin", "console.log(1+1)", []string{"run", "-l", "javascript", "-"}, "2\n"},
		{"node_alias", "", []string{"run", "-l", "node", "-c", "console.log(process.argv.slice(2).join(','))", "--", "x", "y"}, "x,y\n"},
		{"typescript_file", "", []string{"run", ts}, "42\n"},
		{"language_of_the_shebang", "", []string{"run", tool, "--", "1", "2"}, "1+2\n"},
		{"bash", "", []string{"run", "-l", "bash", "-c", "echo $((2+2)); ls /workspace"}, "4\nmain.sh\n"},
		{"stdin_passthrough", "line one\nline two\n", []string{"run", "-i", "-l", "python", "-c", "import sys; print(len(sys.stdin.readlines()))"}, "2\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := c.do(tc.stdin, tc.args...)
			if r.code != 0 || r.stdout != tc.want {
				t.Fatalf("exit %d stdout %q stderr %q, want %q", r.code, r.stdout, r.stderr, tc.want)
			}
			if r.stderr != "" {
				t.Fatalf("unexpected stderr %q", r.stderr)
			}
		})
	}
}

func TestRunExitStatusAndVerdicts(t *testing.T) {
	c := newCLI(t)
	cases := []struct {
		name   string
		args   []string
		code   int
		stderr string // regexp
	}{
		{"exit_code_passes_through", []string{"run", "-l", "python", "-c", "import sys; sys.exit(3)"}, 3, `^$`},
		{"stderr_passes_through", []string{"run", "-l", "bash", "-c", "echo oops >&2; exit 1"}, 1, `^oops\n$`},
		{"timeout", []string{"run", "--timeout", "1s", "-l", "python", "-c", "while True: pass"}, 137, `^cove: killed: wall-clock timeout after 1s\n$`},
		{"timeout_in_seconds", []string{"run", "--timeout", "0.5", "-l", "python", "-c", "while True: pass"}, 137, `^cove: killed: wall-clock timeout after 500ms\n$`},
		{"oom", []string{"run", "--memory", "64M", "-l", "python", "-c", "b=[]\nwhile True: b.append(bytearray(1<<23))"}, 137, `^cove: killed: out of memory \(limit 64 MiB\)\n$`},
		{"output", []string{"run", "--output", "64K", "-l", "bash", "-c", "yes"}, 137, `^cove: output truncated at 64 KiB\n$`},
		{"signal", []string{"run", "-l", "bash", "-c", "kill -TERM $$"}, 143, `^cove: killed by SIGTERM\n$`},
		{"command_not_found", []string{"run", "-l", "bash", "-c", "no-such-tool"}, 127, `no-such-tool: command not found`},
		// As node fails a JavaScript syntax error, with the place.
		{"typescript_syntax", []string{"run", "-l", "ts", "-c", "let x: number = ;"}, 1, `^main\.ts:1:17: error: Unexpected ";"\n    let x: number = ;\n {20}\^\n$`},
		{"javascript_syntax", []string{"run", "-l", "js", "-c", "let x = ;"}, 1, `SyntaxError: Unexpected token ';'`},
		// cove's line starts a line of its own after a partial one.
		{"after_a_partial_line", []string{"run", "--timeout", "1s", "-l", "python", "-c", "import sys, time\nsys.stderr.write('partial'); sys.stderr.flush(); time.sleep(5)"}, 137, `^partial\ncove: killed: wall-clock timeout after 1s\n$`},
		// A limit the program reaches as an error of its own is named.
		{"disk_limit_reached", []string{"run", "--disk", "10M", "-l", "bash", "-c", "head -c 20M /dev/urandom > big"}, 1, `\ncove: the program filled the workspace's disk limit of 10 MiB: --disk gives more\n$`},
		{"open_files_reached", []string{"run", "--open-files", "64", "-l", "python", "-c", "fs = [open('/dev/null') for _ in range(100)]"}, 1, `\ncove: the program reached the limit of 64 open files: --open-files gives more\n$`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r := c.do("", tc.args...)
			if r.code != tc.code || !regexp.MustCompile(tc.stderr).MatchString(r.stderr) {
				t.Fatalf("exit %d stderr %q, want exit %d stderr matching %s", r.code, r.stderr, tc.code, tc.stderr)
			}
		})
	}
}

func TestRunJSON(t *testing.T) {
	c := newCLI(t)
	r := c.do("", "run", "--json", "--memory", "128M", "-l", "python", "-c", "import sys; print('out'); print('err', file=sys.stderr); sys.exit(2)")
	if r.code != 2 {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	var w wire.Result
	if err := json.Unmarshal([]byte(r.stdout), &w); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, r.stdout)
	}
	// What the API answers, limits in MiB and durations as text.
	if w.Limits.MemoryMB != 128 || time.Duration(w.Limits.Timeout) != 30*time.Second {
		t.Fatalf("limits: %+v", w.Limits)
	}
	res, err := w.Cove()
	if err != nil {
		t.Fatal(err)
	}
	if res.Verdict != cove.VerdictExitNonzero || res.ExitCode != 2 || res.Stdout != "out\n" || res.Stderr != "err\n" {
		t.Fatalf("got %+v", res)
	}
	if res.WallMS <= 0 || res.PeakMemoryBytes <= 0 || res.Limits.MemoryBytes != 128<<20 || res.Limits.Timeout != 30*time.Second {
		t.Fatalf("missing measurements or limits: %+v", res)
	}
	var raw map[string]any
	json.Unmarshal([]byte(r.stdout), &raw)
	for _, k := range []string{"stdout", "stderr", "exit_code", "verdict", "wall_ms", "cpu_ms", "peak_memory_bytes", "stdout_truncated", "stderr_truncated"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("--json output lacks %q", k)
		}
	}
}

func TestRunBadInput(t *testing.T) {
	c := newCLI(t)
	dir := t.TempDir()
	rb := writeFile(t, "prog.rb", "puts 1")
	cases := []struct {
		name string
		args []string
		code cove.Code // invalid unless set
	}{
		{"unknown_language", []string{"run", "-l", "cobol", "-c", "x"}, ""},
		{"unknown_extension", []string{"run", rb}, ""},
		{"missing_file", []string{"run", filepath.Join(dir, "nope.py")}, cove.CodeNotFound},
		{"directory", []string{"run", dir}, ""},
		{"device_without_end", []string{"run", "-l", "python", "/dev/zero"}, ""},
		{"bad_memory", []string{"run", "--memory", "lots", "-l", "python", "-c", "1"}, ""},
		{"tiny_memory", []string{"run", "--memory", "1K", "-l", "python", "-c", "1"}, ""},
		{"nothing_to_run", []string{"run"}, ""},
		{"code_without_language", []string{"run", "-c", "print(1)"}, ""},
		{"empty_code", []string{"run", "-l", "python", "-c", ""}, ""},
		{"stdin_without_language", []string{"run", "-"}, ""},
		{"code_and_file", []string{"run", "-l", "python", "-c", "1", rb}, ""},
		{"bad_timeout", []string{"run", "--timeout", "soon", "-l", "python", "-c", "1"}, ""},
		{"bad_cpus", []string{"run", "--cpus", "lots", "-l", "python", "-c", "1"}, ""},
		{"bad_pids", []string{"run", "--pids", "1.5", "-l", "python", "-c", "1"}, ""},
		{"tiny_tmp", []string{"run", "--tmp", "1", "-l", "python", "-c", "1"}, ""},
		{"tmp_over_memory", []string{"run", "--tmp", "1G", "--memory", "256M", "-l", "python", "-c", "1"}, ""},
		{"open_files_out_of_range", []string{"run", "--open-files", "10", "-l", "python", "-c", "1"}, ""},
		{"cove_flag_after_id", []string{"exec", "3f9a1c2b7d4e", "--cwd", "/tmp", "pwd"}, ""},
		{"repl_without_language", []string{"repl"}, ""},
		{"command_misspelt", []string{"exce", "3f9a1c2b7d4e"}, ""},
		{"cpus_not_a_number", []string{"run", "--cpus", "NaN", "-l", "python", "-c", "1"}, ""},
		{"subcommand_misspelt", []string{"keys", "craete"}, ""},
		{"page_over_the_maximum", []string{"ls", "--limit", "500"}, ""},
		{"label_set_and_removed", []string{"update", "3f9a1c2b7d4e", "--label", "a=b", "--remove-label", "a"}, ""},
		{"version_with_argument", []string{"version", "now"}, ""},
		{"mcp_with_argument", []string{"mcp", "stdio"}, ""},
		{"serve_with_argument", []string{"serve", "0.0.0.0:7070"}, ""},
		{"serve_with_server", []string{"serve", "--server", "http://127.0.0.1:7070"}, ""},
		{"unknown_files_command", []string{"files", "list-all", "3f9a1c2b7d4e"}, ""},
		{"unknown_keys_command", []string{"keys", "delete", "key_1"}, ""},
		{"wait_without_pid", []string{"wait", "3f9a1c2b7d4e"}, ""},
		{"ai_missing_file", []string{"ai", "explain", filepath.Join(dir, "nope.py")}, cove.CodeNotFound},
	}
	var all strings.Builder
	for _, tc := range cases {
		r := c.do("", tc.args...)
		code := tc.code
		if code == "" {
			code = cove.CodeInvalid
		}
		if r.code != cove.Codes[code].ExitCode {
			t.Errorf("%s: exit %d, want %d (stderr %q)", tc.name, r.code, cove.Codes[code].ExitCode, r.stderr)
		}
		if r.stdout != "" || !strings.HasPrefix(r.stderr, "cove: ") {
			t.Errorf("%s: stdout %q stderr %q", tc.name, r.stdout, r.stderr)
		}
		all.WriteString("$ cove " + strings.Join(tc.args, " ") + "\n" + r.stderr + "\n")
	}
	stable := strings.NewReplacer(dir, "DIR", filepath.Dir(rb), "TMP")
	golden(t, "bad_input.txt", stable.Replace(all.String()))
}

func TestHelp(t *testing.T) {
	var out strings.Builder
	for _, args := range [][]string{{"--help"}, {"run", "--help"}, {"--version"}} {
		var o, e strings.Builder
		code := run(t.Context(), args, strings.NewReader(""), &o, &e, func(string) string { return "" })
		if code != 0 {
			t.Fatalf("%v: exit %d %s", args, code, e.String())
		}
		out.WriteString("$ cove " + strings.Join(args, " ") + "\n" + o.String() + "\n")
	}
	golden(t, "help.txt", out.String())
}

// TestKilledCoveLeavesNothing kills `cove run` with SIGKILL while its
// program runs: the sandbox must die with it, and the next cove must
// remove what it left.
func TestKilledCoveLeavesNothing(t *testing.T) {
	c := newCLI(t)
	cmd, out, ids, _ := cliProcess(t, c, "run", "-l", "bash", "-c", "echo started; sleep 1000")
	buf := make([]byte, 8)
	if n, err := out.Read(buf); err != nil || string(buf[:n]) != "started\n" {
		t.Fatalf("read %q %v", buf[:n], err)
	}
	id := bootedSandbox(t, ids)
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for procsOf(id) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the sandbox's processes outlived the killed cove")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if left := leftovers(c, id); len(left) == 0 {
		t.Fatalf("expected the killed run to leave its cgroups and workspace for the next start to remove")
	}
	if r := c.do("", "run", "-l", "python", "-c", "print(1)"); r.code != 0 {
		t.Fatalf("next run: %d %s", r.code, r.stderr)
	}
	if left := leftovers(c, id); len(left) > 0 {
		t.Fatalf("the next run did not remove %v", left)
	}
}

// procsOf counts the processes in the sandbox's cgroups.
func procsOf(id string) int {
	n := 0
	files, _ := filepath.Glob("/sys/fs/cgroup/pids/cove/" + id + "/cgroup.procs")
	more, _ := filepath.Glob("/sys/fs/cgroup/pids/cove/" + id + "/*/*/cgroup.procs")
	for _, f := range append(files, more...) {
		b, _ := os.ReadFile(f)
		n += len(strings.Fields(string(b)))
	}
	return n
}

func leftovers(c *cli, id string) []string {
	left, _ := filepath.Glob("/sys/fs/cgroup/*/cove/" + id)
	if _, err := os.Stat(filepath.Join(c.data, "volume", "ws", id)); err == nil {
		left = append(left, "workspace "+id)
	}
	return left
}

// TestRunNetwork reaches a server on the host (at 127.0.0.2, the host's
// loopback but not the sandbox's) through the egress proxy.
func TestRunNetwork(t *testing.T) {
	c := newCLI(t)
	addr := egresstest.HostServer(t)
	fetch := fmt.Sprintf(`import urllib.request
try:
    print(urllib.request.urlopen("http://%s/").read().decode())
except Exception as e:
    print("failed:", e)`, addr)

	c.env["COVE_NETWORK_PRIVATE"] = "127.0.0.2"
	if r := c.do("", "run", "--network", addr, "-l", "python", "-c", fetch); r.code != 0 || r.stdout != "from the host\n" {
		t.Fatalf("with --network: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	if r := c.do("", "run", "-l", "python", "-c", fetch); r.code != 0 || !strings.HasPrefix(r.stdout, "failed:") {
		t.Fatalf("without --network: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	delete(c.env, "COVE_NETWORK_PRIVATE")
	if r := c.do("", "run", "--network", addr, "-l", "python", "-c", fetch); r.code != 125 || r.stdout != "" || !strings.Contains(r.stderr, "cove: network limit: 127.0.0.2 is a private or reserved address, which sandboxes may not reach (the operator can allow it with network_private)") {
		t.Fatalf("a private address the operator did not allow: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
	}
	if r := c.do("", "run", "--network", "https://pypi.org", "-l", "python", "-c", "1"); r.code != 125 || !strings.Contains(r.stderr, `--network "https://pypi.org": give a host, not a URL`) {
		t.Fatalf("a URL for --network: exit %d stderr %q", r.code, r.stderr)
	}
}

// TestRunSaysHowToReachAHost: a program that failed to reach a host in a
// sandbox without a network gets one line saying how to give it one.
func TestRunSaysHowToReachAHost(t *testing.T) {
	c := newCLI(t)
	const hint = "cove: the program could not reach a host: the sandbox has no network; give it the hosts it needs with --network"
	r := c.do("", "run", "-l", "python", "-c", `import urllib.request; urllib.request.urlopen("http://example.org/")`)
	if r.code != 1 || !strings.Contains(r.stderr, hint) || !strings.HasSuffix(r.stderr, "pypi.org,files.pythonhosted.org)\n") {
		t.Fatalf("exit %d stderr %q", r.code, r.stderr)
	}
	// Not for a program that failed otherwise.
	if r := c.do("", "run", "-l", "python", "-c", "raise SystemExit('Name or service known: no')"); strings.Contains(r.stderr, hint) {
		t.Fatalf("stderr %q", r.stderr)
	}
	// pip refuses to install into a Python the distribution manages
	// (PEP 668) before it tries the network: the way forward is a virtual
	// environment, and then the network.
	r = c.do("", "run", "-l", "bash", "-c", "python3 -m pip install cowsay")
	if !strings.Contains(r.stderr, "externally-managed-environment") {
		t.Skipf("the host's Python is not externally managed (PEP 668), or has no pip: %s", r.stderr)
	}
	if r.code == 0 || !strings.HasSuffix(r.stderr, "cove: pip does not install into the system's Python; the host's packages are importable already, and others go into a virtual environment: python3 -m venv .venv && .venv/bin/pip install PACKAGE (with --network pypi.org,files.pythonhosted.org, in the same run)\n") || strings.Contains(r.stderr, hint) {
		t.Fatalf("exit %d stderr %q", r.code, r.stderr)
	}
}

// cliProcess starts the test binary as the cove command, with the debug
// log (which names each sandbox as it boots) on a pipe; ids receives the
// ids of the sandboxes it boots.
func cliProcess(t *testing.T, c *cli, args ...string) (cmd *exec.Cmd, stdout io.ReadCloser, ids <-chan string, stderr *syncBuffer) {
	t.Helper()
	cmd = exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), "COVE_TEST_AS_CLI=1", "COVE_DATA_DIR="+c.data, "COVE_RUN_DIR="+c.run, "COVE_LOG_LEVEL=debug")
	for k, v := range c.env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	// Wait returns once all of stderr has been copied here.
	stderr = newSyncBuffer()
	logs, logw := io.Pipe()
	cmd.Stderr = io.MultiWriter(stderr, logw)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		logw.Close()
	})
	booted := make(chan string, 4)
	go func() {
		re := regexp.MustCompile(`msg="sandbox booted" component=native id=([0-9a-f]+)`)
		sc := bufio.NewScanner(logs)
		for sc.Scan() {
			if m := re.FindStringSubmatch(sc.Text()); m != nil {
				select {
				case booted <- m[1]:
				default: // nobody asks for more: stderr must not block
				}
			}
		}
		io.Copy(io.Discard, logs)
	}()
	return cmd, stdout, booted, stderr
}

// bootedSandbox returns the id of the first sandbox a cliProcess booted.
func bootedSandbox(t *testing.T, ids <-chan string) string {
	t.Helper()
	select {
	case id := <-ids:
		return id
	case <-time.After(30 * time.Second):
		t.Fatal("no sandbox id in the debug log")
		return ""
	}
}

// closeAfterFirstLine reads the first line of a cliProcess's output,
// which must be want, then closes the output, as "| head -1" does, and
// returns the exit status of the command, which must then end.
func closeAfterFirstLine(t *testing.T, cmd *exec.Cmd, out io.ReadCloser, want string) int {
	t.Helper()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != want {
		t.Fatalf("read %q %v, want %q", line, err, want)
	}
	out.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("cove %s went on after its output's reader had gone", strings.Join(cmd.Args[1:], " "))
	}
	return exitStatus(err)
}

// exitStatus is the status a shell shows for a finished command: its exit
// code, or 128 plus the signal that killed it.
func exitStatus(err error) int {
	var xe *exec.ExitError
	if !errors.As(err, &xe) {
		return 0
	}
	if ws, ok := xe.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return xe.ExitCode()
}

// coveLines are the lines cove itself wrote on stderr (not its debug log).
func coveLines(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "cove: ") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestRunInterrupted sends cove run the signals of Ctrl-C and of a
// supervisor's stop while its program runs: the program dies, its sandbox
// is removed before cove exits, and the exit status is the shell's for
// that signal, with one line that says so.
func TestRunInterrupted(t *testing.T) {
	c := newCLI(t)
	for _, tc := range []struct {
		sig  syscall.Signal
		code int
		line string
	}{
		{syscall.SIGINT, 130, "cove: interrupted"},
		{syscall.SIGTERM, 143, "cove: terminated"},
	} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			cmd, out, ids, stderr := cliProcess(t, c, "run", "-l", "bash", "-c", "echo started; sleep 1000")
			buf := make([]byte, 8)
			if n, err := out.Read(buf); err != nil || string(buf[:n]) != "started\n" {
				t.Fatalf("read %q %v", buf[:n], err)
			}
			id := bootedSandbox(t, ids)
			cmd.Process.Signal(tc.sig)
			err := cmd.Wait()
			if got := exitStatus(err); got != tc.code || coveLines(stderr.String()) != tc.line {
				t.Fatalf("exit %d, cove said %q; want exit %d and %q", got, coveLines(stderr.String()), tc.code, tc.line)
			}
			if n := procsOf(id); n > 0 {
				t.Fatalf("%d processes of the sandbox outlived cove run", n)
			}
			if left := leftovers(c, id); len(left) > 0 {
				t.Fatalf("cove run left %v", left)
			}
		})
	}
}

// TestRunJSONInterrupted checks that --json, interrupted, still prints
// its object, with what the program printed so far, for a caller that
// keeps a deadline of its own.
func TestRunJSONInterrupted(t *testing.T) {
	c := newCLI(t)
	cmd, out, ids, stderr := cliProcess(t, c, "run", "--json", "-l", "bash", "-c", "echo started; sleep 1000")
	bootedSandbox(t, ids)
	time.Sleep(500 * time.Millisecond) // for the echo
	cmd.Process.Signal(syscall.SIGTERM)
	b, _ := io.ReadAll(out)
	err := cmd.Wait()
	var w wire.Result
	if jerr := json.Unmarshal(b, &w); jerr != nil || w.Verdict != string(cove.VerdictKilled) || w.Stdout != "started\n" {
		t.Fatalf("printed %q (%v)", b, jerr)
	}
	if got := exitStatus(err); got != 143 || coveLines(stderr.String()) != "cove: terminated" {
		t.Fatalf("exit %d, cove said %q", got, coveLines(stderr.String()))
	}
}

// TestRunIntoClosedPipe runs a program whose output goes to a reader
// that stops reading, as `cove run ... | head -1` does: cove kills the
// program instead of letting it run on, removes its sandbox, says
// nothing, and exits as a command killed by SIGPIPE does.
func TestRunIntoClosedPipe(t *testing.T) {
	c := newCLI(t)
	cmd, out, ids, stderr := cliProcess(t, c, "run", "-l", "python", "-c", "import time\nfor i in range(100000): print(i)\ntime.sleep(1000)")
	id := bootedSandbox(t, ids)
	if got := closeAfterFirstLine(t, cmd, out, "0\n"); got != 141 || coveLines(stderr.String()) != "" {
		t.Fatalf("exit %d, cove said %q; want 141 and nothing", got, coveLines(stderr.String()))
	}
	if n := procsOf(id); n > 0 {
		t.Fatalf("%d processes of the sandbox outlived cove run", n)
	}
	if left := leftovers(c, id); len(left) > 0 {
		t.Fatalf("cove run left %v", left)
	}
}
