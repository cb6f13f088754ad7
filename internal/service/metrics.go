package service

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cove-sandbox/cove"
)

// Metrics are the service's Prometheus metrics. A nil *Metrics records
// nothing.
type Metrics struct {
	sandboxes *prometheus.GaugeVec
	execs     *prometheus.HistogramVec
	creates   prometheus.Histogram
	pool      prometheus.Gauge
}

// NewMetrics registers the service's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		sandboxes: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cove_sandboxes", Help: "Sandboxes by state.",
		}, []string{"state"}),
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

func (m *Metrics) setStates(n map[cove.SandboxState]int) {
	if m != nil {
		for state, c := range n {
			m.sandboxes.WithLabelValues(string(state)).Set(float64(c))
		}
	}
}
