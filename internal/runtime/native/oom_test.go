package native

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/runtime"
)

// TestOOMScore: when the host runs out of memory, the kernel picks the
// sandboxes' processes first, and they cannot make themselves less likely.
func TestOOMScore(t *testing.T) {
	b := newTestBackend(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	inst, err := b.Create(ctx, runtime.Spec{ID: fmt.Sprintf("oom%d", os.Getpid()), Limits: cove.DefaultLimits()})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Destroy(context.Background())
	out := runSh(t, inst, `cat /proc/1/oom_score_adj /proc/self/oom_score_adj; (echo 0 > /proc/self/oom_score_adj) 2>/dev/null && echo lowered; true`)
	if out != "1000\n1000\n" {
		t.Fatalf("the sandbox's OOM scores and attempt to lower them: %q", out)
	}
}
