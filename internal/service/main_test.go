package service

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/agent"
	"github.com/cove-sandbox/cove/internal/runtime/native"
	"github.com/cove-sandbox/cove/internal/volume"
)

func TestMain(m *testing.M) {
	// The test binary doubles as the agent, as the cove binary does.
	if agent.IsAgentInvocation() {
		agent.Main()
		return
	}
	os.Exit(m.Run())
}

// newTestService returns a service on a native backend with its own data
// and run directories, or skips when native sandboxes cannot run here.
func newTestService(t *testing.T) (*Service, *native.Backend) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("native sandboxes need root")
	}
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	be, err := native.New(context.Background(), native.Options{DataDir: data, RunDir: filepath.Join(dir, "run")})
	if err != nil {
		t.Fatalf("native backend: %v", err)
	}
	svc := New(be, Options{Defaults: cove.DefaultLimits()})
	t.Cleanup(func() {
		svc.Close(context.Background())
		be.Close()
		if err := volume.Unmount(data); err != nil {
			t.Errorf("unmounting volume: %v", err)
		}
	})
	return svc, be
}
