package service

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/httpapi"
)

// scrape reads text-format metrics, as Prometheus does, from body.
func scrape(t *testing.T, body io.Reader) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(body)
	if err != nil {
		t.Fatalf("parsing the metrics: %v", err)
	}
	return families
}

// sample is the value of the counter, or the count of the histogram, of
// family whose labels are labels (name, value pairs); -1 when it has no
// such series.
func sample(families map[string]*dto.MetricFamily, family string, labels ...string) float64 {
	f := families[family]
	if f == nil {
		return -1
	}
next:
	for _, m := range f.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(labels); i += 2 {
			if have[labels[i]] != labels[i+1] {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
	}
	return -1
}

// TestMetricsOfRequestsAndLifecycle drives a real API server over HTTP,
// on a real service with native sandboxes, and checks that the request
// and lifecycle metrics it serves at /metrics moved by exactly what was
// done: requests by route pattern (never the raw path) and status, a
// refused key as a 401, and sandboxes created, stopped (on request, when
// idle, at shutdown) and deleted (on request, at the end of their TTL,
// at the end of a one-call run).
func TestMetricsOfRequestsAndLifecycle(t *testing.T) {
	reg := prometheus.NewRegistry()
	svc, _ := newStoredService(t, Options{Defaults: cove.DefaultLimits(), Metrics: NewMetrics(reg), ReapInterval: 50 * time.Millisecond})
	ctx := context.Background()
	const admin = "cove_metrics_admin_secret_0123456789"
	if err := svc.EnsureAdminKey(ctx, admin); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(httpapi.New(svc, httpapi.Options{
		Auth:            svc,
		Metrics:         promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
		MetricsRegistry: reg,
	}))
	defer ts.Close()

	call := func(method, path, key, body string, want int) []byte {
		t.Helper()
		req, err := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d %s, want %d", method, path, resp.StatusCode, b, want)
		}
		return b
	}
	create := func(body string) string {
		t.Helper()
		var sb struct{ ID string }
		if err := json.Unmarshal(call("POST", "/v1/sandboxes", admin, body, http.StatusCreated), &sb); err != nil || sb.ID == "" {
			t.Fatalf("created sandbox: %v", err)
		}
		return sb.ID
	}
	// await waits until done says sandbox id, as GetSandbox answers, is
	// as the test wants it.
	await := func(id string, done func(*cove.Sandbox, error) bool) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for {
			sb, err := svc.GetSandbox(cove.WithKey(ctx, &cove.Key{ID: "admin", Admin: true}), id)
			if done(sb, err) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("sandbox %s: %v %v, still not there after 5s", id, sb, err)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	kept := create(`{"language":"bash"}`)
	deleted := create(`{"language":"bash"}`)
	stopped := create(`{"language":"bash"}`)
	expiring := create(`{"language":"bash","ttl":"300ms"}`)
	idle := create(`{"language":"bash","idle_timeout":"300ms"}`)
	call("GET", "/v1/sandboxes/"+kept, admin, "", http.StatusOK)
	call("GET", "/v1/sandboxes/sb_no_such_sandbox", admin, "", http.StatusNotFound)
	call("GET", "/v1/no/such/route/"+kept, admin, "", http.StatusNotFound)
	call("PUT", "/v1/sandboxes", admin, "", http.StatusMethodNotAllowed)
	call("GET", "/v1/sandboxes", "", "", http.StatusUnauthorized)
	call("GET", "/v1/sandboxes", "cove_not_a_key_0123456789", "", http.StatusUnauthorized)
	call("POST", "/v1/sandboxes/"+stopped+"/stop", admin, "", http.StatusOK)
	call("POST", "/v1/sandboxes/"+stopped+"/stop", admin, "", http.StatusOK) // stopped already: no second stop
	call("DELETE", "/v1/sandboxes/"+deleted, admin, "", http.StatusNoContent)
	call("POST", "/v1/run", admin, `{"language":"bash","code":"echo hi"}`, http.StatusOK)
	await(expiring, func(_ *cove.Sandbox, err error) bool { return err != nil })
	await(idle, func(sb *cove.Sandbox, err error) bool { return err == nil && sb.State == cove.StateStopped })

	call("GET", "/metrics", admin, "", http.StatusOK)
	m := scrape(t, strings.NewReader(string(call("GET", "/metrics", admin, "", http.StatusOK))))
	for _, c := range []struct {
		family string
		labels []string
		want   float64
	}{
		{"cove_http_requests_total", []string{"route", "POST /v1/sandboxes", "code", "201"}, 5},
		{"cove_http_request_duration_seconds", []string{"route", "POST /v1/sandboxes"}, 5},
		{"cove_http_requests_total", []string{"route", "GET /v1/sandboxes/{id}", "code", "200"}, 1},
		{"cove_http_requests_total", []string{"route", "GET /v1/sandboxes/{id}", "code", "404"}, 1},
		{"cove_http_requests_total", []string{"route", "unmatched", "code", "404"}, 1},
		{"cove_http_requests_total", []string{"route", "unmatched", "code", "405"}, 1},
		{"cove_http_requests_total", []string{"route", "GET /v1/sandboxes", "code", "401"}, 2},
		{"cove_http_requests_total", []string{"route", "POST /v1/sandboxes/{id}/stop", "code", "200"}, 2},
		{"cove_http_requests_total", []string{"route", "DELETE /v1/sandboxes/{id}", "code", "204"}, 1},
		{"cove_http_requests_total", []string{"route", "POST /v1/run", "code", "200"}, 1},
		// The scrape before this one; this one is counted once answered.
		{"cove_http_requests_total", []string{"route", "GET /metrics", "code", "200"}, 1},

		{"cove_sandboxes_created_total", []string{"source", "new"}, 6},
		{"cove_sandboxes_created_total", []string{"source", "pool"}, 0},
		{"cove_sandboxes_created_total", []string{"source", "reused"}, 0},
		{"cove_sandboxes_stopped_total", []string{"reason", "request"}, 1},
		{"cove_sandboxes_stopped_total", []string{"reason", "idle"}, 1},
		{"cove_sandboxes_stopped_total", []string{"reason", "shutdown"}, 0},
		{"cove_sandboxes_deleted_total", []string{"reason", "request"}, 1},
		{"cove_sandboxes_deleted_total", []string{"reason", "ttl"}, 1},
		{"cove_sandboxes_deleted_total", []string{"reason", "run"}, 1},
	} {
		if got := sample(m, c.family, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.family, c.labels, got, c.want)
		}
	}
	// No raw path becomes a label.
	for _, mt := range m["cove_http_requests_total"].GetMetric() {
		for _, l := range mt.GetLabel() {
			if strings.Contains(l.GetValue(), kept) || strings.Contains(l.GetValue(), "no_such") {
				t.Errorf("a raw path in the labels: %s=%q", l.GetName(), l.GetValue())
			}
		}
	}

	// A shutdown stops the one sandbox still running.
	if err := svc.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	if got := sample(scrape(t, w.Body), "cove_sandboxes_stopped_total", "reason", "shutdown"); got != 1 {
		t.Errorf("cove_sandboxes_stopped_total{reason=shutdown} = %v after a shutdown with one sandbox running, want 1", got)
	}
}

// TestMetricsCreatedSources checks that a sandbox taken from the warm pool
// and the reset sandbox of an earlier run are counted by where they came
// from, and each run's sandbox as deleted when its run ends.
func TestMetricsCreatedSources(t *testing.T) {
	reg := prometheus.NewRegistry()
	svc, _ := newStoredService(t, Options{Defaults: cove.DefaultLimits(), Metrics: NewMetrics(reg), PoolSize: 1, RunReuse: 1})
	ctx := context.Background()
	deadline := time.Now().Add(10 * time.Second)
	for svc.PoolReady() < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the warm pool made no sandbox in 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	run := cove.RunRequest{CodeRequest: cove.CodeRequest{Language: "bash", Code: "echo hi"}}
	if res := runIn(t, ctx, svc, run); res.Verdict != cove.VerdictOK {
		t.Fatalf("first run: %s %q", res.Verdict, res.Stderr)
	}
	awaitKept(t, svc, 1)
	if res := runIn(t, ctx, svc, run); res.Verdict != cove.VerdictOK {
		t.Fatalf("second run: %s %q", res.Verdict, res.Stderr)
	}
	w := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	m := scrape(t, w.Body)
	for source, want := range map[string]float64{"pool": 1, "reused": 1, "new": 0} {
		if got := sample(m, "cove_sandboxes_created_total", "source", source); got != want {
			t.Errorf("cove_sandboxes_created_total{source=%s} = %v, want %v", source, got, want)
		}
	}
	if got := sample(m, "cove_sandboxes_deleted_total", "reason", "run"); got != 2 {
		t.Errorf("cove_sandboxes_deleted_total{reason=run} = %v after two runs, want 2", got)
	}
}
