// Package e2e drives a real cove server, on a real port, through the Go SDK,
// as users and agents do.
package e2e

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/cove-sandbox/cove/client"
	"github.com/cove-sandbox/cove/internal/agent"
	"github.com/cove-sandbox/cove/internal/httpapi"
	"github.com/cove-sandbox/cove/internal/runtime/native/nativetest"
	"github.com/cove-sandbox/cove/internal/service"
	"github.com/cove-sandbox/cove/internal/store"
)

func TestMain(m *testing.M) {
	// The test binary doubles as the sandboxes' agent.
	if agent.IsAgentInvocation() {
		agent.Main()
		return
	}
	os.Exit(m.Run())
}

// server is a real cove server on 127.0.0.1 with a real SQLite store.
type server struct {
	svc   *service.Service
	url   string
	admin string
}

func newServer(t testing.TB, opts service.Options) *server {
	t.Helper()
	be, _ := nativetest.New(t)
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "cove.db"))
	if err != nil {
		t.Fatal(err)
	}
	opts.Records = st
	svc := service.New(be, opts)
	if err := svc.Start(ctx); err != nil {
		t.Fatal(err)
	}
	secret := "cove_e2e_admin_secret_0123456789"
	if err := svc.EnsureAdminKey(ctx, secret); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(httpapi.New(svc, httpapi.Options{Auth: svc}))
	t.Cleanup(func() {
		ts.Close()
		svc.Close(context.Background())
		st.Close()
	})
	return &server{svc: svc, url: ts.URL, admin: secret}
}

func (s *server) client(t testing.TB, key string) *client.Client {
	t.Helper()
	c, err := client.New(s.url, key)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
