package main

import (
	"bufio"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/wire"
)

func TestProcesses(t *testing.T) {
	srv := newServer(t)
	c := srv.cli(t, srv.admin)
	id := c.create()

	ticker := strings.TrimSpace(c.ok("spawn", "--name", "ticker", id, "--", "sh", "-c", "for i in 1 2 3; do echo tick $i; sleep 0.2; done; echo done >&2"))
	if _, err := strconv.Atoi(ticker); err != nil {
		t.Fatalf("spawn printed %q, want a pid", ticker)
	}
	var sleeperWire wire.Process
	if err := json.Unmarshal([]byte(c.ok("spawn", "--json", id, "--", "sleep", "1000")), &sleeperWire); err != nil {
		t.Fatal(err)
	}
	sleeper, err := sleeperWire.Cove()
	if err != nil {
		t.Fatal(err)
	}
	if sleeper.PID <= 0 || sleeper.State != cove.ProcessRunning || strings.Join(sleeper.Cmd, " ") != "sleep 1000" {
		t.Fatalf("spawn --json: %+v", sleeper)
	}

	t.Run("logs_follow", func(t *testing.T) {
		r := c.do("", "logs", "-f", id, ticker)
		if r.code != 0 || r.stdout != "tick 1\ntick 2\ntick 3\n" || r.stderr != "done\n" {
			t.Fatalf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("ps_table", func(t *testing.T) {
		got := c.ok("ps", id)
		lines := strings.Split(got, "\n")
		// Process ids differ from run to run: the first column becomes PID.
		pid := regexp.MustCompile(`^\d+ *`)
		for i := 1; i < len(lines); i++ {
			lines[i] = pid.ReplaceAllStringFunc(lines[i], func(m string) string { return "PID" + strings.Repeat(" ", len(m)-3) })
		}
		golden(t, "ps.txt", stabilize(strings.Join(lines, "\n")))
	})

	t.Run("logs", func(t *testing.T) {
		r := c.do("", "logs", id, ticker)
		if r.code != 0 || r.stdout != "tick 1\ntick 2\ntick 3\n" || r.stderr != "done\n" {
			t.Fatalf("exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
		}
		out := c.ok("logs", "--json", id, ticker)
		var types []cove.EventType
		sc := bufio.NewScanner(strings.NewReader(out))
		for sc.Scan() {
			var ev wire.Event
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				t.Fatalf("%v: %q", err, sc.Text())
			}
			types = append(types, cove.EventType(ev.Type))
		}
		if len(types) < 3 || types[0] != cove.EventStdout || types[len(types)-1] != cove.EventExit {
			t.Fatalf("logs --json events %v:\n%s", types, out)
		}
	})

	t.Run("kill", func(t *testing.T) {
		c.ok("kill", "--signal", "KILL", id, strconv.Itoa(sleeper.PID))
		deadline := time.Now().Add(10 * time.Second)
		for {
			var procs wire.ProcessList
			if err := json.Unmarshal([]byte(c.ok("ps", "--json", id)), &procs); err != nil {
				t.Fatal(err)
			}
			var p *cove.Process
			for _, q := range procs.Processes {
				if q.PID == sleeper.PID {
					if p, err = q.Cove(); err != nil {
						t.Fatal(err)
					}
				}
			}
			if p == nil {
				t.Fatalf("ps lost the process: %+v", procs)
			}
			if p.State == cove.ProcessExited {
				if p.Result == nil || p.Result.Signal != "SIGKILL" {
					t.Fatalf("killed process: %+v", p.Result)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the process outlived SIGKILL")
			}
			time.Sleep(50 * time.Millisecond)
		}
		// Now it has exited: nothing is signalled, and cove kill says so.
		c.fails(cove.CodeConflict, `^cove: process `+strconv.Itoa(sleeper.PID)+` has already exited \(killed by SIGKILL\); nothing was signalled\n$`,
			"kill", id, strconv.Itoa(sleeper.PID))
	})

	t.Run("wait", func(t *testing.T) {
		// logs -f shows the output and exits 0 whatever the process's
		// status, as docker logs -f does; wait exits with the status.
		failing := strings.TrimSpace(c.ok("spawn", id, "--", "sh", "-c", "sleep 0.3; echo bye; exit 7"))
		if r := c.do("", "logs", "-f", id, failing); r.code != 0 || r.stdout != "bye\n" {
			t.Fatalf("logs -f: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
		}
		for range 2 { // while it runs was just above; once it has exited, at once
			if r := c.do("", "wait", id, failing); r.code != 7 || r.stdout != "" || r.stderr != "" {
				t.Fatalf("wait: exit %d stdout %q stderr %q, want exit 7 and nothing printed", r.code, r.stdout, r.stderr)
			}
		}
		var res wire.Result
		r := c.do("", "wait", "--json", id, failing)
		if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || r.code != 7 || res.Verdict != "exit_nonzero" || res.ExitCode != 7 {
			t.Fatalf("wait --json: exit %d %+v %v %q", r.code, res, err, r.stdout)
		}
		// A process cove stops: its status, and why on stderr.
		slow := strings.TrimSpace(c.ok("spawn", "--timeout", "300ms", id, "--", "sleep", "100"))
		if r := c.do("", "wait", id, slow); r.code != 137 || r.stdout != "" || !strings.HasPrefix(r.stderr, "cove: killed: wall-clock timeout after 300ms") {
			t.Fatalf("wait on a timed-out process: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
		}
		if r := c.do("", "wait", id, ticker); r.code != 0 || r.stdout != "" || r.stderr != "" {
			t.Fatalf("wait on a process that exited 0: exit %d stdout %q stderr %q", r.code, r.stdout, r.stderr)
		}
		c.fails(cove.CodeNotFound, `^cove: .+\n$`, "wait", id, "99999")

		// Output past what is kept: the logs begin at a whole line, and
		// say that the start is gone.
		long := strings.TrimSpace(c.ok("spawn", id, "--", "python3", "-c", "for i in range(300000): print(i)"))
		c.ok("wait", id, long)
		r = c.do("", "logs", id, long)
		lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
		first, _ := strconv.Atoi(lines[0])
		if r.code != 0 || len(r.stdout) > cove.ProcessOutputKept || lines[len(lines)-1] != "299999" || first+len(lines) != 300000 ||
			r.stderr != "cove: the start of its output is no longer kept: cove keeps the last 1 MiB of each stream of a background process (to keep it all, send it to a file: CMD > out.log 2>&1)\n" {
			t.Fatalf("logs of a process that printed more than is kept: exit %d, %d bytes from %q to %q, stderr %q", r.code, len(r.stdout), lines[0], lines[len(lines)-1], r.stderr)
		}
		c.fails(cove.CodeInvalid, `^cove: usage: cove wait`, "wait", id)
	})

	t.Run("logs_follow_into_closed_pipe", func(t *testing.T) {
		// cove logs -f ... | head -1 ends when head does, not when the
		// process does.
		chatty := strings.TrimSpace(c.ok("spawn", id, "--", "sh", "-c", "seq 1 100000; sleep 1000"))
		cmd, out, _, stderr := cliProcess(t, c, "logs", "-f", id, chatty)
		if got := closeAfterFirstLine(t, cmd, out, "1\n"); got != 141 || coveLines(stderr.String()) != "" {
			t.Fatalf("exit %d, cove said %q; want 141 and nothing", got, coveLines(stderr.String()))
		}
		c.ok("kill", id, chatty)
	})

	t.Run("errors", func(t *testing.T) {
		c.fails(cove.CodeInvalid, `^cove: process id "x": use the number`, "logs", id, "x")
		c.fails(cove.CodeNotFound, `^cove: .+\n$`, "logs", id, "99999")
		c.fails(cove.CodeInvalid, `^cove: .*signal`, "kill", "--signal", "NOPE", id, ticker)
		c.fails(cove.CodeInvalid, `^cove: nothing to run`, "spawn", id)
	})
}
