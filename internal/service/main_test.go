package service

import (
	"context"
	"os"
	"testing"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/agent"
	"github.com/cove-sandbox/cove/internal/runtime/native/nativetest"
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
func newTestService(t *testing.T) (*Service, nativetest.Dirs) {
	t.Helper()
	be, dirs := nativetest.New(t)
	svc := New(be, Options{Defaults: cove.DefaultLimits()})
	t.Cleanup(func() { svc.Close(context.Background()) })
	return svc, dirs
}
