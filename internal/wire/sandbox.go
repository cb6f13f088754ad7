package wire

import (
	"time"

	"github.com/cove-sandbox/cove"
)

// CreateSandbox is the body of POST /v1/sandboxes. Limits may be given at
// the top level (memory_mb, cpus, ...), in a nested "limits" object, or
// both as long as they agree.
type CreateSandbox struct {
	Language string `json:"language,omitempty"`
	// Limits at the top level.
	Limits
	// Nested limits.
	NestedLimits *Limits           `json:"limits,omitempty"`
	Env          map[string]string `json:"env,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
	IdleTimeout  Duration          `json:"idle_timeout,omitzero"`
	TTL          Duration          `json:"ttl,omitzero"`
}

// CreateSandboxFrom returns spec on the wire (limits nested).
func CreateSandboxFrom(spec cove.SandboxSpec) *CreateSandbox {
	c := &CreateSandbox{
		Language: spec.Language, Env: spec.Env, Labels: spec.Labels,
		IdleTimeout: Duration(spec.IdleTimeout), TTL: Duration(spec.TTL),
	}
	if spec.Limits != (cove.Limits{}) {
		l := LimitsFrom(spec.Limits)
		c.NestedLimits = &l
	}
	return c
}

// Spec converts c to a cove.SandboxSpec. Errors: invalid.
func (c *CreateSandbox) Spec() (cove.SandboxSpec, error) {
	l := c.Limits
	if c.NestedLimits != nil {
		var err error
		if l, err = l.Merge(*c.NestedLimits); err != nil {
			return cove.SandboxSpec{}, err
		}
	}
	limits, err := l.Cove()
	if err != nil {
		return cove.SandboxSpec{}, err
	}
	return cove.SandboxSpec{
		Language: c.Language, Limits: limits, Env: c.Env, Labels: c.Labels,
		IdleTimeout: time.Duration(c.IdleTimeout), TTL: time.Duration(c.TTL),
	}, nil
}

// Sandbox is cove.Sandbox on the wire.
type Sandbox struct {
	ID           string            `json:"id"`
	State        string            `json:"state"`
	Language     string            `json:"language,omitempty"`
	Limits       Limits            `json:"limits"`
	Env          map[string]string `json:"env,omitempty"`
	Labels       map[string]string `json:"labels,omitempty"`
	Backend      string            `json:"backend,omitempty"`
	Owner        string            `json:"owner,omitempty"`
	IdleTimeout  Duration          `json:"idle_timeout,omitzero"`
	TTL          Duration          `json:"ttl,omitzero"`
	CreatedAt    time.Time         `json:"created_at"`
	LastActiveAt time.Time         `json:"last_active_at"`
	ExpiresAt    time.Time         `json:"expires_at,omitzero"`
}

// SandboxFrom returns s on the wire.
func SandboxFrom(s *cove.Sandbox) *Sandbox {
	return &Sandbox{
		ID: s.ID, State: string(s.State), Language: s.Language, Limits: LimitsFrom(s.Limits),
		Env: s.Env, Labels: s.Labels, Backend: s.Backend, Owner: s.Owner,
		IdleTimeout: Duration(s.IdleTimeout), TTL: Duration(s.TTL),
		CreatedAt: s.CreatedAt, LastActiveAt: s.LastActiveAt, ExpiresAt: s.ExpiresAt,
	}
}

// Cove converts s back to a cove.Sandbox. Errors: invalid (a malformed
// size).
func (s *Sandbox) Cove() (*cove.Sandbox, error) {
	limits, err := s.Limits.Cove()
	if err != nil {
		return nil, err
	}
	return &cove.Sandbox{
		ID: s.ID, State: cove.SandboxState(s.State), Language: s.Language, Limits: limits,
		Env: s.Env, Labels: s.Labels, Backend: s.Backend, Owner: s.Owner,
		IdleTimeout: time.Duration(s.IdleTimeout), TTL: time.Duration(s.TTL),
		CreatedAt: s.CreatedAt, LastActiveAt: s.LastActiveAt, ExpiresAt: s.ExpiresAt,
	}, nil
}

// SandboxList is the answer of GET /v1/sandboxes.
type SandboxList struct {
	Sandboxes     []*Sandbox `json:"sandboxes"`
	NextPageToken string     `json:"next_page_token,omitempty"`
}

// UpdateSandbox is the body of PATCH /v1/sandboxes/{id}. Labels, when
// present, replace all labels ({} removes them); TTL, when present,
// restarts the time to live from now ("0s" removes it).
type UpdateSandbox struct {
	Labels map[string]string `json:"labels,omitzero"`
	TTL    *Duration         `json:"ttl,omitempty"`
}

// UpdateSandboxFrom returns u on the wire.
func UpdateSandboxFrom(u cove.SandboxUpdate) *UpdateSandbox {
	w := &UpdateSandbox{Labels: u.Labels}
	if u.TTL != nil {
		d := Duration(*u.TTL)
		w.TTL = &d
	}
	return w
}

// Update converts u to a cove.SandboxUpdate.
func (u *UpdateSandbox) Update() cove.SandboxUpdate {
	out := cove.SandboxUpdate{Labels: u.Labels}
	if u.TTL != nil {
		d := time.Duration(*u.TTL)
		out.TTL = &d
	}
	return out
}
