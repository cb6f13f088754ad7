package client_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/client"
	"github.com/cove-sandbox/cove/internal/agent"
	"github.com/cove-sandbox/cove/internal/config"
	"github.com/cove-sandbox/cove/internal/httpapi"
	"github.com/cove-sandbox/cove/internal/runtime/native/nativetest"
	"github.com/cove-sandbox/cove/internal/service"
	"github.com/cove-sandbox/cove/internal/store"
)

func TestMain(m *testing.M) {
	// The test binary doubles as the sandboxes' agent, as the cove binary
	// does.
	if agent.IsAgentInvocation() {
		agent.Main()
		return
	}
	code := m.Run()
	if code == 0 && flag.Lookup("test.run").Value.String() == "" && !testing.Short() && routesHit.ran.Load() {
		if missing := routesMissed(); len(missing) > 0 {
			fmt.Fprintf(os.Stderr, "FAIL: no end-to-end test reached these routes:\n\t%s\n", strings.Join(missing, "\n\t"))
			code = 1
		}
	}
	os.Exit(code)
}

// routesHit records the routes that end-to-end requests reached, so that
// a full run can check that it reached every route of the API.
var routesHit struct {
	sync.Map
	ran atomic.Bool // an end-to-end server ran (native sandboxes work here)
}

// routesMissed lists the operations of the OpenAPI document that no
// request reached.
func routesMissed() []string {
	var doc struct {
		Paths map[string]map[string]json.RawMessage
	}
	json.Unmarshal(httpapi.OpenAPI(), &doc)
	var missing []string
	for p, ops := range doc.Paths {
		for m := range ops {
			if m == "parameters" {
				continue
			}
			key := strings.ToUpper(m) + " " + p
			if _, ok := routesHit.Load(key); !ok {
				missing = append(missing, key)
			}
		}
	}
	sort.Strings(missing)
	return missing
}

// recordRoutes notes the route of every request h serves.
func recordRoutes(h http.Handler) http.Handler {
	routesHit.ran.Store(true)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r)
		if r.Pattern != "" {
			routesHit.Store(strings.ReplaceAll(r.Pattern, "{path...}", "{path}"), true)
		}
	})
}

// env is a real cove server for one test: the native backend, the
// service on a SQLite store, and the API on a loopback port, driven by
// clients.
type env struct {
	t        testing.TB
	svc      *service.Service
	url      string
	adminKey string
	admin    *client.Client
}

// newEnv starts a server, or skips the test when native sandboxes cannot
// run here. configure, if given, adjusts the API's options.
func newEnv(t testing.TB, configure ...func(*httpapi.Options)) *env {
	t.Helper()
	be, _ := nativetest.New(t)
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "cove.db"))
	if err != nil {
		t.Fatalf("opening the store: %v", err)
	}
	reg := prometheus.NewRegistry()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	// One-call runs reuse their sandboxes as cove serve's defaults have them.
	svc := service.New(be, service.Options{Records: st, Metrics: service.NewMetrics(reg), Logger: log, RunReuse: config.Default().RunReuse})
	if err := svc.Start(ctx); err != nil {
		t.Fatalf("starting the service: %v", err)
	}
	secret := randomSecret()
	if err := svc.EnsureAdminKey(ctx, secret); err != nil {
		t.Fatalf("admin key: %v", err)
	}
	opts := httpapi.Options{Auth: svc, Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), Logger: log}
	for _, f := range configure {
		f(&opts)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := httpapi.NewHTTPServer("", recordRoutes(httpapi.New(svc, opts)), log)
	go srv.Serve(ln)
	e := &env{t: t, svc: svc, url: "http://" + ln.Addr().String(), adminKey: secret}
	e.admin = e.client(secret)
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
		srv.Close()
		svc.Close(context.Background())
		st.Close()
	})
	return e
}

func randomSecret() string {
	var b [16]byte
	rand.Read(b[:])
	return "cove_test_" + hex.EncodeToString(b[:])
}

// client returns a client of the server that uses key.
func (e *env) client(key string) *client.Client {
	e.t.Helper()
	c, err := client.New(e.url, key)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

// newKey creates a non-admin key and returns a client that uses it.
func (e *env) newKey(q cove.Quota) (*client.Client, *cove.NewKey) {
	e.t.Helper()
	k, err := e.admin.CreateKey(ctxT(e.t), cove.KeySpec{Name: e.t.Name(), Quota: q})
	if err != nil {
		e.t.Fatalf("creating a key: %v", err)
	}
	return e.client(k.Secret), k
}

// sandbox creates a sandbox with c.
func (e *env) sandbox(c *client.Client, spec cove.SandboxSpec) *cove.Sandbox {
	e.t.Helper()
	sb, err := c.CreateSandbox(ctxT(e.t), spec)
	if err != nil {
		e.t.Fatalf("creating a sandbox: %v", err)
	}
	return sb
}

// do sends a raw HTTP request with key (none if empty).
func (e *env) do(method, path, key string, body []byte, header ...string) *http.Response {
	e.t.Helper()
	req, err := http.NewRequestWithContext(ctxT(e.t), method, e.url+path, bytesReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	e.t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// ctxT returns a context that ends with the test or after a minute.
func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}
