package cove

import (
	"context"
	"time"
)

// SandboxState is where a sandbox is in its life.
type SandboxState string

// The sandbox states.
const (
	StateRunning SandboxState = "running"
	StateStopped SandboxState = "stopped"
	StateError   SandboxState = "error"
)

// SandboxSpec describes a sandbox to create.
type SandboxSpec struct {
	// Language is a hint for clients (the default language of RunCode).
	Language string            `json:"language,omitempty"`
	Limits   Limits            `json:"limits,omitempty"`
	Env      map[string]string `json:"env,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
}

// Sandbox is a sandbox as clients see it.
type Sandbox struct {
	ID        string            `json:"id"`
	State     SandboxState      `json:"state"`
	Language  string            `json:"language,omitempty"`
	Limits    Limits            `json:"limits"`
	Env       map[string]string `json:"env,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	Backend   string            `json:"backend"`
	CreatedAt time.Time         `json:"created_at"`
}

// Service is cove's API. Every front end translates to and from it; the
// in-process implementation is internal/service and package client
// implements it over HTTP.
type Service interface {
	// CreateSandbox creates and starts a sandbox.
	// Errors: invalid (bad spec), unavailable (an isolation layer cannot be
	// set up on this host), quota_exceeded.
	CreateSandbox(ctx context.Context, spec SandboxSpec) (*Sandbox, error)
	// GetSandbox returns one sandbox. Errors: not_found.
	GetSandbox(ctx context.Context, id string) (*Sandbox, error)
	// ListSandboxes returns the caller's sandboxes, newest first.
	ListSandboxes(ctx context.Context) ([]*Sandbox, error)
	// DeleteSandbox destroys a sandbox and its workspace. Deleting a
	// sandbox that is already gone succeeds. Errors: internal.
	DeleteSandbox(ctx context.Context, id string) error
	// Exec runs a command in a sandbox and streams its events.
	// Errors: not_found, invalid (empty command), conflict (not running).
	Exec(ctx context.Context, id string, req ExecRequest) (Stream, error)
	// RunCode runs source code as a program in a sandbox.
	// Errors: not_found, invalid (unknown language, compile error), conflict.
	RunCode(ctx context.Context, id string, req CodeRequest) (Stream, error)
	// Run creates an ephemeral sandbox, runs the code in it, and destroys it
	// when the stream ends or is closed. Errors: as CreateSandbox and RunCode.
	Run(ctx context.Context, req RunRequest) (Stream, error)
}
