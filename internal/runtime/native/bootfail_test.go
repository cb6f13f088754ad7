package native

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/runtime"
)

// TestBootFailureNamesTheLayer fails one of the agent's isolation steps
// (a hostname longer than the kernel takes): nothing runs, and the error
// names the step, as the agent reported it.
func TestBootFailureNamesTheLayer(t *testing.T) {
	b := newTestBackend(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	inst, err := b.Create(ctx, runtime.Spec{ID: fmt.Sprintf("bootfail%d", os.Getpid()), Limits: cove.DefaultLimits(), Hostname: strings.Repeat("h", 100)})
	if err == nil {
		inst.Destroy(context.Background())
		t.Fatal("a sandbox whose hostname step failed was created")
	}
	if cove.ErrorCode(err) != cove.CodeUnavailable || !strings.Contains(err.Error(), "sandbox isolation failed at hostname") {
		t.Fatalf("got %v, want unavailable naming the hostname step", err)
	}
}
