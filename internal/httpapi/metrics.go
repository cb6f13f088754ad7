package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// routeUnmatched labels, in the metrics, a request that matched no route:
// an unknown path, a method the path does not take, or an unclean path.
// Its raw path is not a label, so that a client cannot grow the metrics
// without bound by asking for paths that do not exist.
const routeUnmatched = "unmatched"

// requestMetrics count the API's requests by the route they matched.
// A nil *requestMetrics records nothing.
type requestMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// newRequestMetrics registers the API's request metrics with reg; nil
// registers none and records nothing.
func newRequestMetrics(reg prometheus.Registerer) *requestMetrics {
	if reg == nil {
		return nil
	}
	m := &requestMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cove_http_requests_total",
			Help: "Requests to the API (REST, MCP, /healthz and /metrics; not the web UI's pages, nor requests the web UI refuses for their Host), by the route pattern they matched (\"unmatched\" for an unknown path or method) and HTTP status; a 401 is a request refused for its key (missing, unknown or revoked), a 101 a terminal's WebSocket.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "cove_http_request_duration_seconds",
			Help:    "Time to answer requests to the API, by the route pattern they matched; for streamed output, files, terminals and MCP sessions, until the whole answer is written and the handler returns, so these measure how long the stream lasted.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300},
		}, []string{"route"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

// observe counts a request to route, answered with status after d.
func (m *requestMetrics) observe(route string, status int, d time.Duration) {
	if m == nil {
		return
	}
	if status == 0 {
		// The handler wrote nothing: net/http answers 200.
		status = http.StatusOK
	}
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route).Observe(d.Seconds())
}
