package service

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/store"
)

// TestMemRecordsExpiresBy checks the in-memory records' expiry filter,
// which the reaper uses like the database's.
func TestMemRecordsExpiresBy(t *testing.T) {
	m := newMemRecords()
	ctx := context.Background()
	base := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	for _, r := range []store.SandboxRecord{
		{ID: "never", State: cove.StateRunning, CreatedAt: base},
		{ID: "soon", State: cove.StateStopped, CreatedAt: base.Add(time.Second), ExpiresAt: base.Add(10 * time.Second)},
		{ID: "later", State: cove.StateRunning, CreatedAt: base.Add(2 * time.Second), ExpiresAt: base.Add(20 * time.Second)},
	} {
		if err := m.PutSandbox(ctx, &r); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		by   time.Duration
		want []string
	}{{5 * time.Second, nil}, {10 * time.Second, []string{"soon"}}, {time.Minute, []string{"later", "soon"}}} {
		got, _, err := m.ListSandboxes(ctx, store.SandboxFilter{ExpiresBy: base.Add(tc.by)})
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range got {
			ids = append(ids, r.ID)
		}
		if !slices.Equal(ids, tc.want) {
			t.Errorf("expired by +%v: %v, want %v", tc.by, ids, tc.want)
		}
	}
}

// TestMetricsStates checks the sandboxes-by-state gauge, which counts the
// records when it is scraped.
func TestMetricsStates(t *testing.T) {
	reg := prometheus.NewRegistry()
	svc, _ := newStoredService(t, Options{Metrics: NewMetrics(reg)})
	ctx := context.Background()
	var ids []string
	for range 3 {
		sb, err := svc.CreateSandbox(ctx, cove.SandboxSpec{})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, sb.ID)
	}
	if _, err := svc.StopSandbox(ctx, ids[0]); err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "cove_sandboxes" {
			continue
		}
		for _, m := range mf.GetMetric() {
			got[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
		}
	}
	if got["running"] != 2 || got["stopped"] != 1 || got["error"] != 0 {
		t.Errorf("cove_sandboxes = %v, want running 2, stopped 1, error 0", got)
	}
}

// TestIdleTimeoutIgnoresWallClockJumps: idleness is measured on the
// monotonic clock. A sandbox used a moment ago keeps running when the
// wall clock has since jumped ahead (its last activity looks hours old),
// and one idle past its timeout stops although the wall clock has jumped
// back (its last activity looks to be in the future).
func TestIdleTimeoutIgnoresWallClockJumps(t *testing.T) {
	svc, _ := newStoredService(t, Options{ReapInterval: time.Hour}) // reaped by hand below
	ctx := context.Background()
	recent, err := svc.CreateSandbox(ctx, cove.SandboxSpec{IdleTimeout: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	stale, err := svc.CreateSandbox(ctx, cove.SandboxSpec{IdleTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	live := func(id string) *sandbox {
		svc.mu.Lock()
		defer svc.mu.Unlock()
		return svc.live[id]
	}
	time.Sleep(400 * time.Millisecond)
	// What the wall clock says of their last activity after the jumps.
	live(recent.ID).lastActive.Store(time.Now().Add(-2 * time.Hour).UnixNano())
	live(stale.ID).lastActive.Store(time.Now().Add(2 * time.Hour).UnixNano())
	svc.reap(ctx)
	if got, err := svc.GetSandbox(ctx, recent.ID); err != nil || got.State != cove.StateRunning {
		t.Errorf("sandbox active 0.4 s ago, idle timeout 1m, wall clock 2h ahead: %+v %v, want running", got, err)
	}
	if got, err := svc.GetSandbox(ctx, stale.ID); err != nil || got.State != cove.StateStopped {
		t.Errorf("sandbox idle 0.4 s, idle timeout 0.2 s, wall clock 2h back: %+v %v, want stopped", got, err)
	}
}

// TestRenewedTTLIsKept: a TTL renewed after the reaper listed the sandbox
// as expired keeps it (the reaper's deletion checks again), and a renewal
// while the sandbox is being deleted is refused rather than answered and
// lost.
func TestRenewedTTLIsKept(t *testing.T) {
	svc, _ := newStoredService(t, Options{ReapInterval: time.Hour})
	ctx := context.Background()
	sb, err := svc.CreateSandbox(ctx, cove.SandboxSpec{TTL: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	hour := time.Hour
	if _, err := svc.UpdateSandbox(ctx, sb.ID, cove.SandboxUpdate{TTL: &hour}); err != nil {
		t.Fatal(err)
	}
	// The reaper's list, read before the renewal, still named it.
	if err := svc.remove(ctx, sb.ID, deleteTTL, "the sandbox's TTL ended", "its TTL ended"); err != nil {
		t.Fatal(err)
	}
	got, err := svc.GetSandbox(ctx, sb.ID)
	if err != nil || got.State != cove.StateRunning {
		t.Fatalf("the renewed sandbox after the reaper's deletion: %+v, %v", got, err)
	}
	if out := sh(t, svc, ctx, sb.ID, "echo still here").Stdout; out != "still here\n" {
		t.Fatalf("the renewed sandbox runs %q", out)
	}

	done := svc.pass(sb.ID, &transition{state: cove.StateStopping, deleting: true, why: "its TTL (50ms) ended"})
	_, err = svc.UpdateSandbox(ctx, sb.ID, cove.SandboxUpdate{TTL: &hour})
	done()
	if want := "sandbox " + sb.ID + " is being deleted: its TTL (50ms) ended"; cove.ErrorCode(err) != cove.CodeConflict || cove.ErrorMessage(err) != want {
		t.Fatalf("renewing a sandbox being deleted: %v, want conflict %q", err, want)
	}
}

// TestStoppedRunLeavesNoNote: a one-call run's sandbox stopped during the
// run leaves no note of why it stopped once it is gone (the notes of
// stopped sandboxes live as long as cove; runs are many).
func TestStoppedRunLeavesNoNote(t *testing.T) {
	svc, _ := newStoredService(t, Options{})
	ctx := context.Background()
	for range 3 {
		st, err := svc.Run(ctx, cove.RunRequest{CodeRequest: cove.CodeRequest{Language: "bash", Code: "sleep 5"}})
		if err != nil {
			t.Fatal(err)
		}
		var id string
		for deadline := time.Now().Add(5 * time.Second); id == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			list, err := svc.ListSandboxes(ctx, cove.ListOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(list.Sandboxes) > 0 {
				id = list.Sandboxes[0].ID
			}
		}
		if id == "" {
			t.Fatal("the run's sandbox is not listed")
		}
		if _, err := svc.StopSandbox(ctx, id); err != nil {
			t.Fatal(err)
		}
		collect(t, st, nil)
	}
	svc.teardowns.Wait()
	svc.mu.Lock()
	n := len(svc.stops)
	svc.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d notes of stopped run sandboxes are left", n)
	}
}
