package agent_test

import (
	"io"
	"testing"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/agent"
)

// ptyResult runs spec on a terminal to its end and returns its result.
func ptyResult(t *testing.T, c *agent.Client, spec *agent.PTYSpec) *agent.ExecResult {
	t.Helper()
	ctx := t.Context()
	p, err := c.OpenPTY(ctx, spec)
	if err != nil {
		t.Fatalf("opening a terminal for %q: %v", spec.Argv, err)
	}
	defer p.Close()
	io.Copy(io.Discard, p)
	res, err := p.Wait()
	if err != nil {
		t.Fatalf("waiting for %q: %v", spec.Argv, err)
	}
	return res
}

// TestTerminalProgramOutOfMemory: a terminal's program that the memory
// limit kills is said to have run out of memory, as an execution is.
func TestTerminalProgramOutOfMemory(t *testing.T) {
	limits := cove.DefaultLimits()
	limits.MemoryBytes = 64 << 20
	c, _ := newSandbox(t, "ptyoom", limits)
	// tail keeps a line that never ends: /dev/zero has no newline.
	res := ptyResult(t, c, &agent.PTYSpec{Argv: []string{"tail", "/dev/zero"}, Env: pyEnv, Dir: "/workspace"})
	if res.Signal != 9 || !res.OOMKilled {
		t.Errorf("result %+v: want killed by SIGKILL, out of memory", res)
	}
	// A shell whose child ran out of memory, alone in the sandbox, says
	// so too (status 137), as an execution's does.
	res = ptyResult(t, c, &agent.PTYSpec{Argv: []string{"/bin/sh", "-c", "tail /dev/zero; exit $?"}, Env: pyEnv, Dir: "/workspace"})
	if res.ExitCode != 137 || !res.OOMKilled {
		t.Errorf("result %+v: want exit 137, out of memory", res)
	}
	// And a program that exits on its own did not.
	res = ptyResult(t, c, &agent.PTYSpec{Argv: []string{"/bin/sh", "-c", "exit 3"}, Env: pyEnv, Dir: "/workspace"})
	if res.ExitCode != 3 || res.OOMKilled {
		t.Errorf("result %+v: want exit 3, not out of memory", res)
	}
}

// TestTerminalProgramThatCannotStart: a terminal whose program cannot be
// started is refused (invalid) with the reason an execution's result
// gives, naming a missing working directory rather than the program.
func TestTerminalProgramThatCannotStart(t *testing.T) {
	c, ctx := newSandbox(t, "ptystart", cove.DefaultLimits())
	if err := c.WriteFiles(ctx, []agent.File{{Path: "afile", Data: []byte("x")}, {Path: "noexec", Data: []byte("#!/bin/sh\n"), Mode: 0o644}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		argv   []string
		dir    string
		want   string
		status int // the execution's exit status, as a shell's
	}{
		{"not found", []string{"nosuchcmd"}, "/workspace", "nosuchcmd: command not found", 127},
		{"no such file", []string{"./nosuch"}, "/workspace", "./nosuch: no such file or directory", 127},
		{"not executable", []string{"./noexec"}, "/workspace", "./noexec: permission denied", 126},
		{"missing directory", nil, "/nonexist", "working directory /nonexist: no such directory", 127},
		{"a file as directory", []string{"/bin/sh"}, "/workspace/afile", "working directory /workspace/afile: not a directory", 127},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.OpenPTY(ctx, &agent.PTYSpec{Argv: tc.argv, Env: pyEnv, Dir: tc.dir})
			wantError(t, "opening the terminal", err, cove.CodeInvalid)
			if got := cove.ErrorMessage(err); got != tc.want {
				t.Errorf("opening the terminal: %q, want %q", got, tc.want)
			}
			// An execution's result says the same.
			argv := tc.argv
			if argv == nil {
				argv = []string{"/bin/sh"}
			}
			ex, err := c.Start(ctx, &agent.ExecSpec{Argv: argv, Env: pyEnv, Dir: tc.dir, TimeoutMS: 10000}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, _, r := collectExec(t, ex); r == nil || r.ExitCode != tc.status || r.StartError != tc.want {
				t.Errorf("the execution's result %+v: want exit %d, %q", r, tc.status, tc.want)
			}
		})
	}
	// None left a cgroup behind: the sandbox still runs terminals.
	if res := ptyResult(t, c, &agent.PTYSpec{Argv: []string{"true"}, Env: pyEnv, Dir: "/workspace"}); res.ExitCode != 0 {
		t.Errorf("true on a terminal: %+v", res)
	}
}
