package client_test

import (
	"context"
	"testing"

	"github.com/cove-sandbox/cove"
)

// BenchmarkExec measures an exec of `true` in a live sandbox in-process
// and through the API, to show the API's overhead (compare the two).
func BenchmarkExec(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	sb := e.sandbox(e.admin, cove.SandboxSpec{})
	for _, c := range []struct {
		name string
		svc  cove.Service
	}{{"in-process", e.svc}, {"api", e.admin}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				st, err := c.svc.Exec(ctx, sb.ID, cove.ExecRequest{Cmd: []string{"true"}})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := cove.Collect(st); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
