package service

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/runtime"
)

// failingBackend fails every creation the same way, as a disk smaller
// than the default disk limit does.
type failingBackend struct{ runtime.Backend }

func (failingBackend) Name() string { return "failing" }
func (failingBackend) Create(context.Context, runtime.Spec) (runtime.Instance, error) {
	return nil, cove.Errorf(cove.CodeUnavailable, "no room for a workspace")
}

// levels counts log records by level.
type levels struct {
	mu sync.Mutex
	n  map[slog.Level]int
}

func (l *levels) Enabled(context.Context, slog.Level) bool { return true }
func (l *levels) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	l.n[r.Level]++
	l.mu.Unlock()
	return nil
}
func (l *levels) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *levels) WithGroup(string) slog.Handler      { return l }

// TestPoolWarnsOncePerFailure: a warm pool that cannot create a sandbox
// warns once, not every retry, while the failure stays the same.
func TestPoolWarnsOncePerFailure(t *testing.T) {
	h := &levels{n: map[slog.Level]int{}}
	s := New(failingBackend{}, Options{PoolSize: 1, Logger: slog.New(h)})
	s.pool.retry = 5 * time.Millisecond
	s.pool.start()
	time.Sleep(200 * time.Millisecond)
	s.cancel()
	s.pool.wg.Wait()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.n[slog.LevelWarn] != 1 || h.n[slog.LevelDebug] < 3 {
		t.Fatalf("%d warnings and %d debug records for one failure repeated; want 1 warning", h.n[slog.LevelWarn], h.n[slog.LevelDebug])
	}
}
