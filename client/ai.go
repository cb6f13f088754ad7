package client

import (
	"context"

	"github.com/cove-sandbox/cove"
)

// Analyze implements cove.Service.
func (c *Client) Analyze(ctx context.Context, req cove.AIRequest) (cove.AIStream, error) {
	return nil, cove.Errorf(cove.CodeUnavailable, "code analysis is not built yet")
}
