package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/wire"
)

func contextPath(id, contextID, rest string) string {
	return sandboxPath(id, "/contexts/"+url.PathEscape(contextID)+rest)
}

// CreateContext implements cove.Service (POST /v1/sandboxes/{id}/contexts).
func (c *Client) CreateContext(ctx context.Context, id string, spec cove.ContextSpec) (*cove.Context, error) {
	var out cove.Context
	if err := c.call(ctx, http.MethodPost, sandboxPath(id, "/contexts"), nil, spec, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// ListContexts implements cove.Service (GET /v1/sandboxes/{id}/contexts).
func (c *Client) ListContexts(ctx context.Context, id string) ([]*cove.Context, error) {
	var list wire.ContextList
	if err := c.call(ctx, http.MethodGet, sandboxPath(id, "/contexts"), nil, nil, &list); err != nil {
		return nil, err
	}
	return list.Contexts, nil
}

// GetContext implements cove.Service (GET .../contexts/{cid}).
func (c *Client) GetContext(ctx context.Context, id, contextID string) (*cove.Context, error) {
	var out cove.Context
	if err := c.call(ctx, http.MethodGet, contextPath(id, contextID, ""), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RestartContext implements cove.Service (POST .../contexts/{cid}/restart).
func (c *Client) RestartContext(ctx context.Context, id, contextID string) (*cove.Context, error) {
	var out cove.Context
	if err := c.call(ctx, http.MethodPost, contextPath(id, contextID, "/restart"), nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// DeleteContext implements cove.Service (DELETE .../contexts/{cid}).
func (c *Client) DeleteContext(ctx context.Context, id, contextID string) error {
	return c.call(ctx, http.MethodDelete, contextPath(id, contextID, ""), nil, nil, nil)
}

// InterruptContext implements cove.Service (POST .../contexts/{cid}/interrupt).
func (c *Client) InterruptContext(ctx context.Context, id, contextID string) error {
	return c.call(ctx, http.MethodPost, contextPath(id, contextID, "/interrupt"), nil, nil, nil)
}

// RunCell implements cove.Service (POST .../contexts/{cid}/run, streamed as
// NDJSON). Closing the stream or cancelling ctx interrupts the cell.
func (c *Client) RunCell(ctx context.Context, id, contextID string, req cove.CellRequest) (cove.Stream, error) {
	return c.openStream(ctx, http.MethodPost, contextPath(id, contextID, "/run"), nil, wire.CellRequestFrom(req), true)
}
