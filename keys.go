package cove

import (
	"context"
	"time"
)

// Quota bounds what one key may use at once; zero fields are unlimited.
type Quota struct {
	MaxSandboxes       int   `json:"max_sandboxes,omitempty"`
	MaxConcurrentExecs int   `json:"max_concurrent_execs,omitempty"`
	MaxMemoryBytes     int64 `json:"max_memory_bytes,omitempty"`
}

// Key is an API key as listed (never with its secret).
type Key struct {
	ID        string     `json:"id"`
	Name      string     `json:"name,omitempty"`
	Admin     bool       `json:"admin"`
	Quota     Quota      `json:"quota"`
	CreatedAt time.Time  `json:"created_at"`
	RevokedAt *time.Time `json:"revoked_at,omitempty"`
}

// KeySpec describes a key to create.
type KeySpec struct {
	Name  string `json:"name,omitempty"`
	Admin bool   `json:"admin,omitempty"`
	Quota Quota  `json:"quota,omitempty"`
}

// NewKey is a created key with its secret, shown once.
type NewKey struct {
	Key
	Secret string `json:"key"`
}

type keyCtx struct{}

// WithKey returns a context in which Service calls act for key.
func WithKey(ctx context.Context, key *Key) context.Context {
	return context.WithValue(ctx, keyCtx{}, key)
}

// KeyFrom returns the key of ctx, or nil when the call is local (the
// in-process CLI acts as administrator).
func KeyFrom(ctx context.Context) *Key {
	k, _ := ctx.Value(keyCtx{}).(*Key)
	return k
}
