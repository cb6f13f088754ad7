package service

import (
	"context"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/runtime/native/nativetest"
)

// TestRunUnderLoad runs programs in one-call sandboxes from four goroutines
// at once, with a warm pool, as POST /v1/run does under load: every run
// must end with its result. It is a stress test, run on demand:
//
//	COVE_TEST_RUNS=700 go test ./internal/service -run TestRunUnderLoad -v
//
// (700 runs per goroutine take about 40 s on two cores). It found runs
// failing with "the sandbox's agent is gone", about one in a few thousand,
// while the agent's main goroutine could start on another thread than the
// main one (see agent/mainthread_linux.go).
func TestRunUnderLoad(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("COVE_TEST_RUNS"))
	if n <= 0 {
		t.Skip("a stress test: set COVE_TEST_RUNS to the runs per goroutine (e.g. 700)")
	}
	be, _ := nativetest.New(t)
	// Warnings, such as a warm-pool sandbox that failed to start, go to
	// the test's output.
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	svc := New(be, Options{Defaults: cove.DefaultLimits(), PoolSize: 2, Logger: log})
	t.Cleanup(func() { svc.Close(context.Background()) })
	ctx := context.Background()
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	fails := 0
	start := time.Now()
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n; i++ {
				st, err := svc.Run(ctx, cove.RunRequest{CodeRequest: cove.CodeRequest{Language: "python", Code: "print(1)"}})
				var res *cove.ExecResult
				if err == nil {
					res, err = cove.Collect(st)
				}
				if err == nil && (res.Verdict != cove.VerdictOK || res.Stdout != "1\n") {
					t.Errorf("run ended %s: %q %q", res.Verdict, res.Stdout, res.Stderr)
				}
				if err != nil {
					mu.Lock()
					fails++
					mu.Unlock()
					t.Errorf("run %d: %v", i, err)
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d runs in %s, %d failed", 4*n, time.Since(start).Round(time.Millisecond), fails)
}
