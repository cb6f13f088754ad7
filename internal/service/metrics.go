package service

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/egress"
)

// Metrics are the service's Prometheus metrics. A nil *Metrics records
// nothing.
type Metrics struct {
	sandboxes *stateCollector
	execs     *prometheus.HistogramVec
	running   prometheus.Gauge
	creates   prometheus.Histogram
	pool      prometheus.Gauge
	egress    *prometheus.CounterVec
	created   *prometheus.CounterVec
	stopped   *prometheus.CounterVec
	deleted   *prometheus.CounterVec
	// runners are the service's kept one-call sandboxes, once it has them.
	runners atomic.Pointer[runners]
}

// NewMetrics registers the service's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		sandboxes: &stateCollector{desc: prometheus.NewDesc("cove_sandboxes", "Sandboxes by state, those of one-call runs while they run included; not the warm pool's idle sandboxes (cove_pool_ready) nor the reset sandboxes of finished runs kept for reuse (cove_run_sandboxes_kept), which no one owns yet.", []string{"state"}, nil)},
		execs: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "cove_exec_duration_seconds", Help: "Wall time of executions and cells, by verdict; \"abandoned\" for those whose stream was closed before their result was read (the client went away, stalled or stopped reading), which killed them.",
			Buckets: []float64{.005, .01, .02, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"verdict"}),
		running: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cove_executions_running", Help: "Executions and cells running now: from their start until their stream is closed, a client slow to read it included.",
		}),
		creates: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "cove_sandbox_create_seconds", Help: "Time to create a sandbox (not from the warm pool).",
			Buckets: []float64{.002, .005, .01, .02, .05, .1, .25, .5, 1},
		}),
		pool: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cove_pool_ready", Help: "Idle sandboxes ready in the warm pool.",
		}),
		egress: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cove_egress_requests_total", Help: "Requests of sandboxes to their network proxies (tunnels and plain HTTP), by outcome: allowed, refused (not in the sandbox's network limit, or a private address), failed (unreachable), busy (the proxies' connection bound), bad_request.",
		}, []string{"outcome"}),
		created: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cove_sandboxes_created_total", Help: "Sandboxes created (one-call runs' included), by source: new (made for the request), pool (taken from the warm pool), reused (the reset sandbox of an earlier one-call run, run_reuse).",
		}, []string{"source"}),
		stopped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cove_sandboxes_stopped_total", Help: "Running sandboxes stopped (their files kept), by reason: request (a stop call), idle (idle timeout), shutdown (cove shut down), died (found dead, and stopped to be started again).",
		}, []string{"reason"}),
		deleted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cove_sandboxes_deleted_total", Help: "Sandboxes deleted, running or stopped, by reason: request (a delete call, or the end of the MCP session that made it), ttl (its TTL ended), run (the end of its one-call run; a kept one counts again as created when reused), closed (the one-shot CLI's service ended).",
		}, []string{"reason"}),
	}
	kept := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "cove_run_sandboxes_kept", Help: "Sandboxes of finished one-call runs kept, reset, for their key's next run (run_reuse).",
	}, func() float64 {
		if r := m.runners.Load(); r != nil {
			return float64(r.count())
		}
		return 0
	})
	runs := func(reused bool) prometheus.CounterFunc {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "cove_runs_total", Help: "One-call runs (POST /v1/run), by whether their sandbox was a reset one of an earlier run or a new one.",
			ConstLabels: prometheus.Labels{"sandbox": map[bool]string{true: "reused", false: "new"}[reused]},
		}, func() float64 {
			if r := m.runners.Load(); r != nil {
				if reused {
					return float64(r.hits.Load())
				}
				return float64(r.runs.Load() - r.hits.Load())
			}
			return 0
		})
	}
	// Every label is there from the start, at 0, so that a rate over
	// the first event is right and an alert need not know of absent series.
	for _, l := range []createSource{createdNew, createdPool, createdReused} {
		m.created.WithLabelValues(string(l))
	}
	for _, l := range []stopReason{stopRequest, stopIdle, stopShutdown, stopDied} {
		m.stopped.WithLabelValues(string(l))
	}
	for _, l := range []deleteReason{deleteRequest, deleteTTL, deleteRun, deleteClosed} {
		m.deleted.WithLabelValues(string(l))
	}
	reg.MustRegister(m.sandboxes, m.execs, m.running, m.creates, m.pool, m.egress, m.created, m.stopped, m.deleted, kept, runs(true), runs(false))
	return m
}

func (m *Metrics) observeExec(d time.Duration, v cove.Verdict) {
	if m != nil {
		m.execs.WithLabelValues(string(v)).Observe(d.Seconds())
	}
}

// verdictAbandoned labels, in the metrics only, an execution whose stream
// was closed before its result was read.
const verdictAbandoned cove.Verdict = "abandoned"

// execution is an execution or a cell as the metrics see it: running
// from its start until its stream is closed, and observed once, with its
// verdict when its result is read, else as abandoned when its stream is
// closed. Without this, an execution whose client stalls would show
// nowhere: not while it waits for the client, nor once it is dropped.
type execution struct {
	m        *Metrics
	started  time.Time
	observed atomic.Bool
	closed   atomic.Bool
}

// startExec counts an execution as running from now.
func (m *Metrics) startExec() *execution {
	if m != nil {
		m.running.Inc()
	}
	return &execution{m: m, started: time.Now()}
}

// result observes the execution's verdict, once. A nil *execution (the
// logs of a background process, which are not an execution) observes
// nothing.
func (e *execution) result(v cove.Verdict) {
	if e != nil && e.observed.CompareAndSwap(false, true) {
		e.m.observeExec(time.Since(e.started), v)
	}
}

// close ends the execution: it is no longer running, and if its result
// was never read, it was abandoned.
func (e *execution) close() {
	if e == nil || !e.closed.CompareAndSwap(false, true) {
		return
	}
	e.result(verdictAbandoned)
	if e.m != nil {
		e.m.running.Dec()
	}
}

// observeEgress counts a request to a sandbox's network proxy.
func (m *Metrics) observeEgress(o egress.Outcome) {
	if m != nil {
		m.egress.WithLabelValues(string(o)).Inc()
	}
}

func (m *Metrics) observeCreate(d time.Duration) {
	if m != nil {
		m.creates.Observe(d.Seconds())
	}
}

// createSource labels, in the metrics, where a new sandbox came from.
type createSource string

const (
	createdNew    createSource = "new"
	createdPool   createSource = "pool"
	createdReused createSource = "reused"
)

// sourceOf is where a sandbox came from: a kept run sandbox, the warm
// pool (an instance taken), or neither.
func sourceOf(kept, taken bool) createSource {
	switch {
	case kept:
		return createdReused
	case taken:
		return createdPool
	}
	return createdNew
}

func (m *Metrics) sandboxCreated(source createSource) {
	if m != nil {
		m.created.WithLabelValues(string(source)).Inc()
	}
}

// stopReason labels, in the metrics, why a running sandbox stopped.
type stopReason string

const (
	stopRequest  stopReason = "request"
	stopIdle     stopReason = "idle"
	stopShutdown stopReason = "shutdown"
	stopDied     stopReason = "died"
)

func (m *Metrics) sandboxStopped(reason stopReason) {
	if m != nil {
		m.stopped.WithLabelValues(string(reason)).Inc()
	}
}

// deleteReason labels, in the metrics, why a sandbox was deleted.
type deleteReason string

const (
	deleteRequest deleteReason = "request"
	deleteTTL     deleteReason = "ttl"
	deleteRun     deleteReason = "run"
	deleteClosed  deleteReason = "closed"
)

func (m *Metrics) sandboxDeleted(reason deleteReason) {
	if m != nil {
		m.deleted.WithLabelValues(string(reason)).Inc()
	}
}

func (m *Metrics) watchRunners(r *runners) {
	if m != nil {
		m.runners.Store(r)
	}
}

func (m *Metrics) setPool(n int) {
	if m != nil {
		m.pool.Set(float64(n))
	}
}

// countStatesWith makes the sandboxes-by-state gauge call count when it
// is scraped.
func (m *Metrics) countStatesWith(count func(context.Context) (map[cove.SandboxState]int, error)) {
	if m != nil {
		m.sandboxes.mu.Lock()
		m.sandboxes.count = count
		m.sandboxes.mu.Unlock()
	}
}

// stateCollector reports the sandboxes by state when it is scraped:
// counting them reads every record, which a scrape now and then can
// afford, and a loop every second, with thousands of stopped sandboxes
// kept, could not.
type stateCollector struct {
	desc  *prometheus.Desc
	mu    sync.Mutex
	count func(context.Context) (map[cove.SandboxState]int, error)
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	count := c.count
	c.mu.Unlock()
	if count == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	n, err := count(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	for state, v := range n {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(v), string(state))
	}
}
