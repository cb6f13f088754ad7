package service

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/runtime"
	"github.com/cove-sandbox/cove/internal/runtime/native/nativetest"
)

// gatedBackend holds every Create, and every Destroy of what it created,
// until the test lets it go on.
type gatedBackend struct {
	runtime.Backend
	creating, created chan struct{}
	destroying, freed chan struct{}
}

func (b *gatedBackend) Create(ctx context.Context, spec runtime.Spec) (runtime.Instance, error) {
	b.creating <- struct{}{}
	<-b.created
	inst, err := b.Backend.Create(ctx, spec)
	if err != nil {
		return nil, err
	}
	return &gatedInstance{Instance: inst, b: b}, nil
}

type gatedInstance struct {
	runtime.Instance
	b *gatedBackend
}

func (i *gatedInstance) Destroy(ctx context.Context) error {
	i.b.destroying <- struct{}{}
	<-i.b.freed
	return i.Instance.Destroy(ctx)
}

// A sandbox on its way in or out shows as starting or stopping, not as one
// that died, in lists, in filters and to a request that finds it so.
func TestSandboxInTransitShowsItsState(t *testing.T) {
	be, _ := nativetest.New(t)
	gb := &gatedBackend{Backend: be, creating: make(chan struct{}), created: make(chan struct{}), destroying: make(chan struct{}, 4), freed: make(chan struct{})}
	svc := New(gb, Options{Defaults: cove.DefaultLimits()})
	var free sync.Once
	defer svc.Close(context.Background())
	defer free.Do(func() { close(gb.freed) })
	ctx := context.Background()

	made := make(chan *cove.Sandbox, 1)
	go func() {
		sb, err := svc.CreateSandbox(ctx, cove.SandboxSpec{})
		if err != nil {
			t.Error(err)
		}
		made <- sb
	}()
	<-gb.creating
	states := func(filter cove.SandboxState) []cove.SandboxState {
		t.Helper()
		l, err := svc.ListSandboxes(ctx, cove.ListOptions{State: filter})
		if err != nil {
			t.Fatal(err)
		}
		var out []cove.SandboxState
		for _, sb := range l.Sandboxes {
			out = append(out, sb.State)
		}
		return out
	}
	if got := states(""); len(got) != 1 || got[0] != cove.StateStarting {
		t.Fatalf("while it is created, the list shows %v, want [starting]", got)
	}
	if got := states(cove.StateStarting); len(got) != 1 {
		t.Fatalf("state=starting lists %v, want the sandbox being created", got)
	}
	if got := states(cove.StateError); len(got) != 0 {
		t.Fatalf("state=error lists %v, want nothing", got)
	}
	if got := states(cove.StateRunning); len(got) != 0 {
		t.Fatalf("state=running lists %v while the sandbox is still being created", got)
	}
	l, _ := svc.ListSandboxes(ctx, cove.ListOptions{})
	id := l.Sandboxes[0].ID
	_, err := svc.Exec(ctx, id, cove.ExecRequest{Cmd: []string{"true"}})
	if err == nil || !strings.Contains(err.Error(), "is starting: try again") {
		t.Fatalf("an exec while the sandbox starts gave %v, want a conflict that says it is starting", err)
	}
	gb.created <- struct{}{}
	sb := <-made
	if sb == nil || sb.State != cove.StateRunning {
		t.Fatalf("created sandbox %+v, want running", sb)
	}

	deleted := make(chan error, 1)
	go func() { deleted <- svc.DeleteSandbox(ctx, id) }()
	<-gb.destroying
	if got := states(""); len(got) != 1 || got[0] != cove.StateStopping {
		t.Fatalf("while it is removed, the list shows %v, want [stopping]", got)
	}
	if got := states(cove.StateError); len(got) != 0 {
		t.Fatalf("state=error lists %v while the sandbox is removed", got)
	}
	free.Do(func() { close(gb.freed) })
	select {
	case err := <-deleted:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("delete did not end")
	}
	if got := states(""); len(got) != 0 {
		t.Fatalf("after the delete, the list shows %v", got)
	}
	if _, err := svc.ListSandboxes(ctx, cove.ListOptions{State: "sleeping"}); err == nil || !strings.Contains(err.Error(), "running, starting, stopping, stopped or error") {
		t.Fatalf("an unknown state filter gave %v", err)
	}
}
