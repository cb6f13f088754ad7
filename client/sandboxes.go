package client

import (
	"context"
	"net/http"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/wire"
)

// CreateSandbox implements cove.Service (POST /v1/sandboxes).
func (c *Client) CreateSandbox(ctx context.Context, spec cove.SandboxSpec) (*cove.Sandbox, error) {
	return c.sandboxCall(ctx, http.MethodPost, "/v1/sandboxes", wire.CreateSandboxFrom(spec))
}

// GetSandbox implements cove.Service (GET /v1/sandboxes/{id}).
func (c *Client) GetSandbox(ctx context.Context, id string) (*cove.Sandbox, error) {
	return c.sandboxCall(ctx, http.MethodGet, sandboxPath(id, ""), nil)
}

// ListSandboxes implements cove.Service (GET /v1/sandboxes).
func (c *Client) ListSandboxes(ctx context.Context, opts cove.ListOptions) (*cove.SandboxList, error) {
	var list wire.SandboxList
	if err := c.call(ctx, http.MethodGet, "/v1/sandboxes", wire.ListQuery(opts), nil, &list); err != nil {
		return nil, err
	}
	out := &cove.SandboxList{Sandboxes: make([]*cove.Sandbox, 0, len(list.Sandboxes)), NextPageToken: list.NextPageToken}
	for _, w := range list.Sandboxes {
		sb, err := w.Cove()
		if err != nil {
			return nil, err
		}
		out.Sandboxes = append(out.Sandboxes, sb)
	}
	return out, nil
}

// UpdateSandbox implements cove.Service (PATCH /v1/sandboxes/{id}).
func (c *Client) UpdateSandbox(ctx context.Context, id string, u cove.SandboxUpdate) (*cove.Sandbox, error) {
	return c.sandboxCall(ctx, http.MethodPatch, sandboxPath(id, ""), wire.UpdateSandboxFrom(u))
}

// StopSandbox implements cove.Service (POST /v1/sandboxes/{id}/stop).
func (c *Client) StopSandbox(ctx context.Context, id string) (*cove.Sandbox, error) {
	return c.sandboxCall(ctx, http.MethodPost, sandboxPath(id, "/stop"), nil)
}

// StartSandbox implements cove.Service (POST /v1/sandboxes/{id}/start).
func (c *Client) StartSandbox(ctx context.Context, id string) (*cove.Sandbox, error) {
	return c.sandboxCall(ctx, http.MethodPost, sandboxPath(id, "/start"), nil)
}

// DeleteSandbox implements cove.Service (DELETE /v1/sandboxes/{id}).
func (c *Client) DeleteSandbox(ctx context.Context, id string) error {
	return c.call(ctx, http.MethodDelete, sandboxPath(id, ""), nil, nil, nil)
}

func (c *Client) sandboxCall(ctx context.Context, method, p string, in any) (*cove.Sandbox, error) {
	var w wire.Sandbox
	if err := c.call(ctx, method, p, nil, in, &w); err != nil {
		return nil, err
	}
	return w.Cove()
}

// Version implements cove.Service (GET /v1/version).
func (c *Client) Version(ctx context.Context) (*cove.VersionInfo, error) {
	var v wire.Version
	if err := c.call(ctx, http.MethodGet, "/v1/version", nil, nil, &v); err != nil {
		return nil, err
	}
	return &v, nil
}
