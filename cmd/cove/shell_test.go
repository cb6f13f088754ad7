package main

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cove-sandbox/cove"
)

// TestShellSignals ends `cove shell` on a terminal with SIGTERM and with
// SIGHUP: it exits with the signal's status and gives the terminal back
// as it was, out of raw mode.
func TestShellSignals(t *testing.T) {
	srv := newServer(t)
	c := srv.cli(t, srv.admin)
	id := strings.TrimSpace(c.ok("create"))
	for _, tc := range []struct {
		sig  syscall.Signal
		code int
	}{{syscall.SIGTERM, 143}, {syscall.SIGHUP, 129}} {
		t.Run(tc.sig.String(), func(t *testing.T) {
			o := startOnTerminal(t, []string{"COVE_URL=" + srv.url, "COVE_API_KEY=" + srv.admin}, 80, 24, "shell", id, "--", "sh", "-c", "echo ready; sleep 1000")
			o.waitFor("ready", 1)
			o.cmd.Process.Signal(tc.sig)
			if code := o.exitCode(10 * time.Second); code != tc.code {
				t.Errorf("exit %d, want %d; the output:\n%q", code, tc.code, o.out.String())
			}
			if !o.cooked() {
				t.Error("the terminal was left in raw mode")
			}
		})
	}
}

// TestExecWithTerminalFlag points `cove exec -it` (docker's words) to
// cove shell, which has the terminal.
func TestExecWithTerminalFlag(t *testing.T) {
	for _, args := range [][]string{{"exec", "-it", "3f9a1c2b7d4e", "--", "bash"}, {"exec", "--tty", "3f9a1c2b7d4e", "--", "bash"}} {
		r := (&cli{t: t}).do("", args...)
		if r.code != cove.Codes[cove.CodeInvalid].ExitCode || !strings.Contains(r.stderr, "cove shell ID") || strings.Contains(r.stderr, "put the command after --") {
			t.Errorf("%v: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
}
