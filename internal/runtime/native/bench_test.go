package native

import (
	"context"
	"fmt"
	"os/exec"
	"testing"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/agent"
	"github.com/cove-sandbox/cove/internal/agentbin"
	"github.com/cove-sandbox/cove/internal/runtime"
)

// newBenchBackend is a backend whose agents are the small static agent
// binary cove embeds (see package agentbin), as cove's own are, rather
// than the test binary, which is many times its size and, built with cgo,
// changes its capabilities through the C library. (TestEmbeddedAgentIsCurrent
// keeps the embedded agent current with its source.)
func newBenchBackend(b *testing.B) *Backend {
	return newTestBackendWith(b, Options{AgentBinary: agentbin.Binary(), AgentHash: agentbin.Hash()})
}

// BenchmarkExec measures one execution of /bin/true in a running sandbox
// through the agent, to compare with BenchmarkBareExec.
func BenchmarkExec(b *testing.B) {
	be := newBenchBackend(b)
	ctx := context.Background()
	inst, err := be.Create(ctx, runtime.Spec{ID: "benchexec", Limits: cove.DefaultLimits()})
	if err != nil {
		b.Fatal(err)
	}
	defer inst.Destroy(ctx)
	spec := agent.ExecSpec{Argv: []string{"/bin/true"}, Dir: "/workspace", Env: []string{"PATH=/usr/bin:/bin"}, TimeoutMS: 10000}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s := spec
		ex, err := inst.Agent().Start(ctx, &s, nil)
		if err != nil {
			b.Fatal(err)
		}
		for {
			out, err := ex.Next()
			if err != nil {
				b.Fatal(err)
			}
			if out.Result != nil {
				break
			}
		}
		ex.Close()
	}
}

// BenchmarkBareExec starts /bin/true directly.
func BenchmarkBareExec(b *testing.B) {
	for i := 0; i < b.N; i++ {
		if err := exec.Command("/bin/true").Run(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkContextCell measures one trivial Python cell (x+1) in a
// running context through the agent: host, agent, driver and back.
func BenchmarkContextCell(b *testing.B) {
	be := newBenchBackend(b)
	ctx := context.Background()
	inst, err := be.Create(ctx, runtime.Spec{ID: "benchcell", Limits: cove.DefaultLimits()})
	if err != nil {
		b.Fatal(err)
	}
	defer inst.Destroy(ctx)
	c := inst.Agent()
	spec := &agent.ContextSpec{ID: "bench", Language: "python", Env: []string{"PATH=/usr/bin:/bin"}, Dir: "/workspace"}
	if err := c.StartContext(ctx, spec); err != nil {
		b.Skipf("no python context: %v", err)
	}
	cell := agent.CellSpec{Code: "x = 1", Filename: "<cell>", TimeoutMS: 10000}
	run := func() {
		ce, err := c.RunCell(ctx, "bench", &cell)
		if err != nil {
			b.Fatal(err)
		}
		for {
			ev, err := ce.Next()
			if err != nil {
				b.Fatal(err)
			}
			if ev.Result != nil {
				if ev.Result.Status != "ok" {
					b.Fatalf("cell %q: %+v", cell.Code, ev.Result)
				}
				break
			}
		}
		ce.Close()
	}
	run()
	cell.Code = "x+1"
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		run()
	}
}

// BenchmarkCreateDestroy creates and destroys an idle sandbox.
func BenchmarkCreateDestroy(b *testing.B) {
	be := newBenchBackend(b)
	ctx := context.Background()
	// Not the backend's set-up (a new workspace volume, formatted).
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		inst, err := be.Create(ctx, runtime.Spec{ID: fmt.Sprintf("benchcreate%d", i), Limits: cove.DefaultLimits()})
		if err != nil {
			b.Fatal(err)
		}
		if err := inst.Destroy(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
