// Package runtime defines the small interface between cove's service layer
// and the backends that create sandboxes. A backend creates a sandbox and
// hands back a client for the agent inside it; everything else (exec,
// files) is the agent's protocol, the same on every backend. Optional
// capabilities are separate one-method interfaces found by type assertion.
package runtime

import (
	"context"
	"net"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/agent"
)

// Spec describes a sandbox to create.
type Spec struct {
	// ID names the sandbox; the backend uses it for its resources.
	ID     string
	Limits cove.Limits
	// Hostname defaults to "cove".
	Hostname string
	// Resume starts the sandbox on the workspace it kept when it was
	// stopped, instead of a new empty one.
	Resume bool
	// Ephemeral says nothing keeps a record of the sandbox: if its owner
	// dies, a sweep may delete its workspace too.
	Ephemeral bool
}

// Backend creates sandboxes.
type Backend interface {
	// Name identifies the backend ("native").
	Name() string
	// Create creates and starts a sandbox whose agent is ready for requests.
	// Errors: invalid (bad spec), not_found (Resume, and the workspace is
	// gone), unavailable (an isolation layer cannot be set up; the message
	// names it), internal.
	Create(ctx context.Context, spec Spec) (Instance, error)
	// DeleteWorkspace removes the workspace a stopped sandbox kept.
	// Removing a missing workspace succeeds.
	DeleteWorkspace(ctx context.Context, id string) error
	// Close releases the backend's own resources. Sandboxes are not
	// destroyed by Close.
	Close() error
}

// Instance is one running sandbox.
type Instance interface {
	// ID returns the sandbox's id.
	ID() string
	// Agent returns the client of the agent inside the sandbox.
	Agent() *agent.Client
	// Done is closed when the sandbox has died (its agent exited).
	Done() <-chan struct{}
	// Stop kills every process of the sandbox and removes its resources
	// but the workspace, which a later Create with Resume uses again. It
	// is idempotent.
	Stop(ctx context.Context) error
	// Destroy is Stop that also removes the workspace. It is idempotent.
	Destroy(ctx context.Context) error
}

// Sweeper is implemented by backends that can remove what sandboxes of
// crashed cove processes left behind.
type Sweeper interface {
	// Sweep removes leftovers of sandboxes whose owner is gone. The
	// workspaces of ephemeral sandboxes always go; other workspaces go
	// when keep, the judgement of whoever keeps the records, returns false
	// for them, and stay when keep is nil.
	Sweep(ctx context.Context, keep func(id string) bool) error
}

// HealthChecker is implemented by backends that can tell that they cannot
// make sandboxes now whatever the request, such as when the workspaces'
// file system has gone read-only.
type HealthChecker interface {
	// Health returns nil while the backend can make and run sandboxes.
	// Errors: unavailable, saying what is wrong and how to repair it.
	Health(ctx context.Context) error
}

// Listener is implemented by instances that can listen on the sandbox's
// own network, accepting its connections outside the sandbox: cove's
// egress proxy serves a sandbox that way, since the sandbox has no route
// out.
type Listener interface {
	// Listen listens on a TCP address inside the sandbox. Errors:
	// conflict (the sandbox was created without a network limit, is
	// listened in already, or was stopped), unavailable.
	Listen(addr string) (net.Listener, error)
}
