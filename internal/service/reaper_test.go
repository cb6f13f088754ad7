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
