package service

import (
	"context"
	"fmt"
	goruntime "runtime"
	"strings"
	"testing"
	"time"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/runtime/native/nativetest"
)

// TestSpecRefusals checks that a refused sandbox spec or command says
// which field is wrong and what to give instead.
func TestSpecRefusals(t *testing.T) {
	svc, _ := newTestService(t)
	ctx := context.Background()
	for _, c := range []struct {
		name string
		spec cove.SandboxSpec
		msg  string
	}{
		{"negative ttl", cove.SandboxSpec{TTL: -time.Second}, `ttl -1s must not be negative: leave it out or give a duration such as "10m"`},
		{"negative idle timeout", cove.SandboxSpec{IdleTimeout: -time.Minute}, `idle_timeout -1m0s must not be negative: leave it out or give a duration such as "10m"`},
		{"unknown language", cove.SandboxSpec{Language: "cobol"}, `unknown language "cobol": use python`},
		{"file limit over the disk", cove.SandboxSpec{Limits: cove.Limits{FileBytes: 64 << 20, DiskBytes: 32 << 20}}, "file size limit 64 MiB is larger than the disk limit of 32 MiB"},
		{"file limit over the default disk", cove.SandboxSpec{Limits: cove.Limits{FileBytes: 2 << 30}}, "file size limit 2 GiB is larger than the disk limit of 1 GiB"},
		{"more memory than the machine has", cove.SandboxSpec{Limits: cove.Limits{MemoryBytes: 1 << 50}}, "a memory limit of 1048576 GiB is more than this machine has ("},
		{"more CPUs than the machine has", cove.SandboxSpec{Limits: cove.Limits{CPUs: float64(goruntime.NumCPU()) + 0.5}}, fmt.Sprintf("a CPU limit of %g is more than this machine has (%d ", float64(goruntime.NumCPU())+0.5, goruntime.NumCPU())},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := svc.CreateSandbox(ctx, c.spec)
			if cove.ErrorCode(err) != cove.CodeInvalid || !strings.Contains(cove.ErrorMessage(err), c.msg) {
				t.Fatalf("got %v, want invalid %q", err, c.msg)
			}
		})
	}
	// Both a command and a shell line: which one was meant is not known.
	both := "give either cmd or shell, not both"
	_, err := svc.Exec(ctx, "nope", cove.ExecRequest{Cmd: []string{"echo", "cmd"}, Shell: "echo shell"})
	if cove.ErrorCode(err) != cove.CodeInvalid || cove.ErrorMessage(err) != both {
		t.Fatalf("exec with cmd and shell: %v", err)
	}
	_, err = svc.StartProcess(ctx, "nope", cove.ProcessRequest{Cmd: []string{"sleep", "1"}, Shell: "sleep 2"})
	if cove.ErrorCode(err) != cove.CodeInvalid || cove.ErrorMessage(err) != both {
		t.Fatalf("process with cmd and shell: %v", err)
	}
	if list, _ := svc.ListSandboxes(ctx, cove.ListOptions{}); len(list.Sandboxes) != 0 {
		t.Fatalf("refused specs left sandboxes: %v", list.Sandboxes)
	}
}

// TestLanguageIsCanonical checks that a sandbox keeps its language by the
// registry's name, whatever alias or case it was created with.
func TestLanguageIsCanonical(t *testing.T) {
	svc, _ := newTestService(t)
	ctx := context.Background()
	for in, want := range map[string]string{"PYTHON": "python", "py": "python", " Node ": "javascript", "ts": "typescript"} {
		sb, err := svc.CreateSandbox(ctx, cove.SandboxSpec{Language: in})
		if err != nil {
			t.Fatalf("%q: %v", in, err)
		}
		got, err := svc.GetSandbox(ctx, sb.ID)
		if err != nil {
			t.Fatal(err)
		}
		if sb.Language != want || got.Language != want {
			t.Errorf("created with %q: language %q, then %q; want %q", in, sb.Language, got.Language, want)
		}
		if in == "PYTHON" {
			// Code runs in the sandbox's language.
			st, err := svc.RunCode(ctx, sb.ID, cove.CodeRequest{Code: "print(6*7)"})
			if err != nil {
				t.Fatal(err)
			}
			if res, err := cove.Collect(st); err != nil || res.Stdout != "42\n" {
				t.Fatalf("run: %+v, %v", res, err)
			}
		}
		if err := svc.DeleteSandbox(ctx, sb.ID); err != nil {
			t.Fatal(err)
		}
	}
}

// readyAnalyzer is an Analyzer that only says whether it is configured.
type readyAnalyzer bool

func (r readyAnalyzer) Analyze(context.Context, cove.Service, cove.AIRequest) (cove.AIStream, error) {
	return nil, cove.Errorf(cove.CodeUnavailable, "not in this test")
}
func (r readyAnalyzer) Ready() bool { return bool(r) }

// The version says whether code analysis is configured, so that a front
// end can say so before anyone asks.
func TestVersionSaysWhetherAnalysisIsConfigured(t *testing.T) {
	for _, c := range []struct {
		name string
		a    Analyzer
		want bool
	}{{"none", nil, false}, {"no key", readyAnalyzer(false), false}, {"a key", readyAnalyzer(true), true}} {
		be, _ := nativetest.New(t)
		svc := New(be, Options{Analyzer: c.a})
		v, err := svc.Version(context.Background())
		if err != nil || v.Analysis != c.want {
			t.Errorf("%s: analysis %v (%v), want %v", c.name, v.Analysis, err, c.want)
		}
		svc.Close(context.Background())
	}
}

// TestOpenFilesUpToTheCeiling checks that a sandbox gets any open-files
// limit up to what cove may give (its own hard limit, which its agents may
// only lower), and that a larger one is refused at creation, saying why,
// rather than failing the agent's boot as an unavailable runtime.
func TestOpenFilesUpToTheCeiling(t *testing.T) {
	svc, _ := newTestService(t)
	ctx := context.Background()
	most := min(openFilesCeiling(), 1<<20)
	sb, err := svc.CreateSandbox(ctx, cove.SandboxSpec{Limits: cove.Limits{OpenFiles: int(most)}})
	if err != nil {
		t.Fatalf("open files %d: %v", most, err)
	}
	st, err := svc.Exec(ctx, sb.ID, cove.ExecRequest{Shell: "ulimit -n; ulimit -Hn"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := cove.Collect(st)
	if want := fmt.Sprintf("%d\n%d\n", most, most); err != nil || res.Stdout != want {
		t.Fatalf("ulimit in a sandbox with open files %d: %+v, %v; want %q", most, res, err, want)
	}
	if most == 1<<20 {
		t.Log("cove's hard limit reaches cove's own maximum: no larger limit to refuse")
		return
	}
	_, err = svc.CreateSandbox(ctx, cove.SandboxSpec{Limits: cove.Limits{OpenFiles: int(most) + 1}})
	want := fmt.Sprintf("an open-files limit of %d is more than cove may give (its own hard limit is %d)", most+1, most)
	if cove.ErrorCode(err) != cove.CodeInvalid || !strings.Contains(cove.ErrorMessage(err), want) {
		t.Fatalf("open files %d: got %v, want invalid %q", most+1, err, want)
	}
}

// TestRelativeCwdIsInTheWorkspace checks that a relative working
// directory names a directory inside /workspace, as the file operations'
// paths do, for an execution, a background process and a terminal.
func TestRelativeCwdIsInTheWorkspace(t *testing.T) {
	svc, _ := newTestService(t)
	ctx := context.Background()
	sb, err := svc.CreateSandbox(ctx, cove.SandboxSpec{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.MakeDir(ctx, sb.ID, "src/lib"); err != nil {
		t.Fatal(err)
	}
	st, err := svc.Exec(ctx, sb.ID, cove.ExecRequest{Cmd: []string{"pwd"}, Cwd: "src/lib"})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := cove.Collect(st); err != nil || res.Stdout != "/workspace/src/lib\n" {
		t.Errorf("exec in src/lib: %+v, %v", res, err)
	}
	p, err := svc.StartProcess(ctx, sb.ID, cove.ProcessRequest{Cmd: []string{"pwd"}, Cwd: "src"})
	if err != nil {
		t.Fatal(err)
	}
	logs, err := svc.ProcessLogs(ctx, sb.ID, p.PID, true)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := cove.Collect(logs); err != nil || res.Stdout != "/workspace/src\n" {
		t.Errorf("process in src: %+v, %v", res, err)
	}
}

// TestBackgroundPythonWritesLines checks that a python3 started as a
// background process, not as a language's program, writes its standard
// output a line at a time: a server's first line shows in its logs while
// it runs, not when it exits.
func TestBackgroundPythonWritesLines(t *testing.T) {
	svc, _ := newTestService(t)
	ctx := context.Background()
	sb, err := svc.CreateSandbox(ctx, cove.SandboxSpec{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := svc.StartProcess(ctx, sb.ID, cove.ProcessRequest{Cmd: []string{"python3", "-c", "import time; print('serving', flush=False); time.sleep(60)"}})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		st, err := svc.ProcessLogs(ctx, sb.ID, p.PID, false)
		if err != nil {
			t.Fatal(err)
		}
		var out string
		for {
			ev, err := st.Next()
			if err != nil {
				break
			}
			if ev.Type == cove.EventStdout {
				out += string(ev.Data)
			}
		}
		st.Close()
		if out == "serving\n" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the process's logs after 10 s: %q, want its first line", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
