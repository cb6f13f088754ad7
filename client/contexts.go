package client

import (
	"context"

	"github.com/cove-sandbox/cove"
)

func errNoContexts() error {
	return cove.Errorf(cove.CodeUnavailable, "stateful contexts are not built yet")
}

// CreateContext implements cove.Service.
func (c *Client) CreateContext(ctx context.Context, id string, spec cove.ContextSpec) (*cove.Context, error) {
	return nil, errNoContexts()
}

// ListContexts implements cove.Service.
func (c *Client) ListContexts(ctx context.Context, id string) ([]*cove.Context, error) {
	return nil, errNoContexts()
}

// GetContext implements cove.Service.
func (c *Client) GetContext(ctx context.Context, id, contextID string) (*cove.Context, error) {
	return nil, errNoContexts()
}

// RestartContext implements cove.Service.
func (c *Client) RestartContext(ctx context.Context, id, contextID string) (*cove.Context, error) {
	return nil, errNoContexts()
}

// DeleteContext implements cove.Service.
func (c *Client) DeleteContext(ctx context.Context, id, contextID string) error {
	return errNoContexts()
}

// RunCell implements cove.Service.
func (c *Client) RunCell(ctx context.Context, id, contextID string, req cove.CellRequest) (cove.Stream, error) {
	return nil, errNoContexts()
}

// InterruptContext implements cove.Service.
func (c *Client) InterruptContext(ctx context.Context, id, contextID string) error {
	return errNoContexts()
}
