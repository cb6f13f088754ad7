package service

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cove-sandbox/cove"
)

// Metrics are the service's Prometheus metrics. A nil *Metrics records
// nothing.
type Metrics struct {
	sandboxes *stateCollector
	execs     *prometheus.HistogramVec
	creates   prometheus.Histogram
	pool      prometheus.Gauge
}

// NewMetrics registers the service's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		sandboxes: &stateCollector{desc: prometheus.NewDesc("cove_sandboxes", "Sandboxes by state.", []string{"state"}, nil)},
		execs: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "cove_exec_duration_seconds", Help: "Wall time of executions, by verdict.",
			Buckets: []float64{.005, .01, .02, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}, []string{"verdict"}),
		creates: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "cove_sandbox_create_seconds", Help: "Time to create a sandbox (not from the warm pool).",
			Buckets: []float64{.002, .005, .01, .02, .05, .1, .25, .5, 1},
		}),
		pool: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cove_pool_ready", Help: "Idle sandboxes ready in the warm pool.",
		}),
	}
	reg.MustRegister(m.sandboxes, m.execs, m.creates, m.pool)
	return m
}

func (m *Metrics) observeExec(d time.Duration, v cove.Verdict) {
	if m != nil {
		m.execs.WithLabelValues(string(v)).Observe(d.Seconds())
	}
}

func (m *Metrics) observeCreate(d time.Duration) {
	if m != nil {
		m.creates.Observe(d.Seconds())
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
