package e2e

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/service"
)

// TestLoad runs 50 concurrent clients against a real server on loopback
// for a bounded time; every request must succeed. Set COVE_LOAD_SECONDS to
// change the duration (default 30).
func TestLoad(t *testing.T) {
	dur := 30 * time.Second
	if v := os.Getenv("COVE_LOAD_SECONDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			t.Fatalf("COVE_LOAD_SECONDS: %v", err)
		}
		dur = time.Duration(n) * time.Second
	}
	if testing.Short() {
		dur = 3 * time.Second
	}
	srv := newServer(t, service.Options{})
	c := srv.client(t, srv.admin)
	ctx := context.Background()
	// Ten sandboxes shared by fifty clients, five each.
	var ids []string
	for i := 0; i < 10; i++ {
		sb, err := c.CreateSandbox(ctx, cove.SandboxSpec{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, sb.ID)
	}
	const clients = 50
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		lat      []time.Duration
		failures atomic.Int64
		firstErr atomic.Value
	)
	stop := time.Now().Add(dur)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			id := ids[i%len(ids)]
			for n := 0; time.Now().Before(stop); n++ {
				want := fmt.Sprintf("c%d-%d", i, n)
				start := time.Now()
				st, err := c.Exec(ctx, id, cove.ExecRequest{Cmd: []string{"echo", want}})
				var res *cove.ExecResult
				if err == nil {
					res, err = cove.Collect(st)
				}
				d := time.Since(start)
				if err == nil && (res.Verdict != cove.VerdictOK || res.Stdout != want+"\n") {
					err = fmt.Errorf("exec %s: verdict %s stdout %q", want, res.Verdict, res.Stdout)
				}
				if err != nil {
					failures.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				mu.Lock()
				lat = append(lat, d)
				mu.Unlock()
			}
		}(i)
	}
	wg.Wait()
	if n := failures.Load(); n > 0 {
		t.Fatalf("%d requests failed; first: %v", n, firstErr.Load())
	}
	slices.Sort(lat)
	p := func(q float64) time.Duration { return lat[int(float64(len(lat)-1)*q)] }
	t.Logf("load: %d clients, %s, %d execs, %.0f execs/s, p50 %v, p99 %v, max %v",
		clients, dur, len(lat), float64(len(lat))/dur.Seconds(), p(0.5).Round(time.Microsecond), p(0.99).Round(time.Microsecond), lat[len(lat)-1].Round(time.Microsecond))
	if len(lat) == 0 {
		t.Fatal("no request completed")
	}
}
