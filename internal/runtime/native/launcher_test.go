package native

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/agent"
	"github.com/cove-sandbox/cove/internal/runtime"
)

// runOnce creates a sandbox, runs argv in it and destroys it, returning
// what the program printed.
func runOnce(ctx context.Context, b *Backend, id string, argv ...string) (string, error) {
	inst, err := b.Create(ctx, runtime.Spec{ID: id, Limits: cove.DefaultLimits(), Ephemeral: true})
	if err != nil {
		return "", fmt.Errorf("create: %w", err)
	}
	defer inst.Destroy(ctx)
	spec := agent.ExecSpec{Argv: argv, Dir: "/workspace", Env: []string{"PATH=/usr/bin:/bin"}, TimeoutMS: 20000}
	ex, err := inst.Agent().Start(ctx, &spec, nil)
	if err != nil {
		return "", fmt.Errorf("exec: %w", err)
	}
	defer ex.Close()
	var out strings.Builder
	for {
		o, err := ex.Next()
		if err != nil {
			return out.String(), fmt.Errorf("exec stream: %w (agent stderr %q)", err, inst.(*sandbox).stderrText())
		}
		if o.Stream == 1 {
			out.Write(o.Data)
		}
		if o.Result != nil {
			if o.Result.ExitCode != 0 {
				return out.String(), fmt.Errorf("exit %d", o.Result.ExitCode)
			}
			return out.String(), nil
		}
	}
}

// TestLifecycleConcurrent creates, uses and destroys sandboxes from four
// goroutines at once, with agents started directly and through the
// launcher, and checks that every run works and nothing is left behind.
func TestLifecycleConcurrent(t *testing.T) {
	for _, launcher := range []bool{false, true} {
		t.Run(fmt.Sprintf("launcher=%v", launcher), func(t *testing.T) {
			b := newTestBackend(t)
			b.opts.Launcher = launcher
			ctx := context.Background()
			n := 25
			if testing.Short() {
				n = 5
			}
			var wg sync.WaitGroup
			errs := make(chan error, 4*n)
			for w := 0; w < 4; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < n; i++ {
						id := fmt.Sprintf("conc%d-%d", w, i)
						out, err := runOnce(ctx, b, id, "/bin/echo", id)
						if err == nil && out != id+"\n" {
							err = fmt.Errorf("printed %q", out)
						}
						if err != nil {
							errs <- fmt.Errorf("%s: %w", id, err)
						}
						if left := leftovers(b)(id); len(left) > 0 {
							errs <- fmt.Errorf("%s left %v", id, left)
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			if launcher {
				if b.launcher == nil {
					t.Fatal("no launcher was started")
				}
				// The agents were the launcher's children, not ours.
				kids, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", os.Getpid()))
				for _, k := range kids {
					if data, _ := os.ReadFile(k); len(strings.TrimSpace(string(data))) > 0 && !strings.Contains(string(data), fmt.Sprint(b.launcher.Pid())) {
						t.Errorf("this process has children other than the launcher: %s", data)
					}
				}
			}
		})
	}
}

// TestAgentDeathIsAnError: when a sandbox's agent dies during an
// execution, the execution's stream fails; it must not look like a stream
// that ended normally.
func TestAgentDeathIsAnError(t *testing.T) {
	b := newTestBackend(t)
	ctx := context.Background()
	inst, err := b.Create(ctx, runtime.Spec{ID: "agentdeath", Limits: cove.DefaultLimits()})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Destroy(ctx)
	spec := agent.ExecSpec{Argv: []string{"/bin/sleep", "30"}, Dir: "/workspace", Env: []string{"PATH=/usr/bin:/bin"}, TimeoutMS: 60000}
	ex, err := inst.Agent().Start(ctx, &spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	if err := inst.(*sandbox).proc.Kill(); err != nil {
		t.Fatal(err)
	}
	_, err = ex.Next()
	if err == nil || errors.Is(err, io.EOF) || !strings.Contains(err.Error(), "agent is gone") {
		t.Fatalf("Next after the agent died: %v, want an error saying the agent is gone", err)
	}
	if cove.ErrorCode(err) != cove.CodeUnavailable {
		t.Errorf("error code %s, want %s", cove.ErrorCode(err), cove.CodeUnavailable)
	}
}

// TestLauncherTCPHash checks that a sandbox started through the launcher
// has a TCP connection hash table of its own, sized by the launcher, and
// that one started directly shares the host's (the kernel shows a shared
// table's size as a negative number).
func TestLauncherTCPHash(t *testing.T) {
	const file = "/proc/sys/net/ipv4/tcp_child_ehash_entries"
	if _, err := os.Stat(file); err != nil {
		t.Skipf("this kernel has no %s (before 5.19)", file)
	}
	for _, launcher := range []bool{false, true} {
		t.Run(fmt.Sprintf("launcher=%v", launcher), func(t *testing.T) {
			b := newTestBackend(t)
			b.opts.Launcher = launcher
			out, err := runOnce(context.Background(), b, fmt.Sprintf("tcphash-%v", launcher), "cat", "/proc/sys/net/ipv4/tcp_ehash_entries")
			if err != nil {
				t.Fatal(err)
			}
			got := strings.TrimSpace(out)
			switch {
			case launcher && got != "1024":
				t.Errorf("tcp_ehash_entries in a sandbox started by the launcher = %q, want 1024", got)
			case !launcher && !strings.HasPrefix(got, "-"):
				t.Errorf("tcp_ehash_entries in a sandbox started directly = %q, want the host's shared table (negative)", got)
			}
		})
	}
	// The host's own setting is untouched.
	if data, err := os.ReadFile(file); err != nil || strings.TrimSpace(string(data)) != hostChildHash {
		t.Errorf("the host's %s changed: %q %v, was %q", file, data, err, hostChildHash)
	}
}

// TestLauncherOwnProcessGroup checks that the agents a launcher starts are
// outside the process group of the process that uses them, so that a
// signal to that group (a Ctrl-C in a terminal) reaches cove alone, which
// drains running executions before it stops the sandboxes.
func TestLauncherOwnProcessGroup(t *testing.T) {
	b := newTestBackend(t)
	b.opts.Launcher = true
	inst, err := b.Create(context.Background(), runtime.Spec{ID: "pgid", Limits: cove.DefaultLimits(), Ephemeral: true})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Destroy(context.Background())
	agentPgid, err := syscall.Getpgid(inst.(*sandbox).proc.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if own := syscall.Getpgrp(); agentPgid == own {
		t.Errorf("the agent is in this process's group %d", own)
	}
	if _, err := runOnce(context.Background(), b, "pgid-run", "true"); err != nil {
		t.Errorf("a sandbox after the check: %v", err)
	}
}

// hostChildHash is the host's tcp_child_ehash_entries when the tests start.
var hostChildHash = func() string {
	data, _ := os.ReadFile("/proc/sys/net/ipv4/tcp_child_ehash_entries")
	return strings.TrimSpace(string(data))
}()
