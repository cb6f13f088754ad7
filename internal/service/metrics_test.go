package service

import (
	"context"
	"io"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/runtime/native/nativetest"
)

// gather scrapes reg as Prometheus does and returns the value of the
// gauge name, and the count of the histogram name by verdict.
func gather(t *testing.T, reg *prometheus.Registry, gauge, histogram string) (float64, map[string]uint64) {
	t.Helper()
	w := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	var g float64
	counts := map[string]uint64{}
	for _, line := range strings.Split(w.Body.String(), "\n") {
		name, value, ok := strings.Cut(line, " ")
		if !ok || strings.HasPrefix(line, "#") {
			continue
		}
		switch {
		case name == gauge:
			g, _ = strconv.ParseFloat(value, 64)
		case strings.HasPrefix(name, histogram+"_count{verdict=\""):
			n, _ := strconv.ParseUint(value, 10, 64)
			counts[strings.TrimSuffix(strings.TrimPrefix(name, histogram+"_count{verdict=\""), "\"}")] = n
		}
	}
	return g, counts
}

// TestMetricsSeeEveryExecution checks that an execution is counted as
// running until its stream is closed, whether or not its reader keeps
// up, and that one whose stream is closed before its result is read is
// observed as abandoned rather than not at all.
func TestMetricsSeeEveryExecution(t *testing.T) {
	be, _ := nativetest.New(t)
	reg := prometheus.NewRegistry()
	svc := New(be, Options{Defaults: cove.DefaultLimits(), Metrics: NewMetrics(reg)})
	t.Cleanup(func() { svc.Close(context.Background()) })
	ctx := context.Background()
	sb, err := svc.CreateSandbox(ctx, cove.SandboxSpec{Language: "bash"})
	if err != nil {
		t.Fatal(err)
	}
	const running, duration = "cove_executions_running", "cove_exec_duration_seconds"

	// A reader that reads one event and then stalls.
	st, err := svc.Exec(ctx, sb.ID, cove.ExecRequest{Cmd: []string{"yes"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Next(); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	st2, err := svc.RunCell(cctx, sb.ID, mustContext(t, svc, sb.ID), cove.CellRequest{Code: "while True: pass"})
	if err != nil {
		t.Fatal(err)
	}
	if g, _ := gather(t, reg, running, duration); g != 2 {
		t.Fatalf("%s = %v with an execution and a cell running, want 2", running, g)
	}
	st.Close()
	cancel()
	st2.Close()
	g, counts := gather(t, reg, running, duration)
	if g != 0 || counts["abandoned"] != 2 {
		t.Fatalf("after closing both unread: %s = %v, verdicts %v; want 0 and 2 abandoned", running, g, counts)
	}

	// One read to its end is observed once, with its verdict.
	st, err = svc.Exec(ctx, sb.ID, cove.ExecRequest{Cmd: []string{"true"}})
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := st.Next(); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	g, counts = gather(t, reg, running, duration)
	if g != 0 || counts["ok"] != 1 || counts["abandoned"] != 2 {
		t.Fatalf("after a finished execution: %s = %v, verdicts %v; want 0, 1 ok, 2 abandoned", running, g, counts)
	}
}

// mustContext creates a Python context in sandbox id.
func mustContext(t *testing.T, svc *Service, id string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := svc.CreateContext(ctx, id, cove.ContextSpec{Language: "python"})
	if err != nil {
		t.Fatal(err)
	}
	return c.ID
}
