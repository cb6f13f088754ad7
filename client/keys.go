package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/wire"
)

// CreateKey implements cove.Service (POST /v1/keys).
func (c *Client) CreateKey(ctx context.Context, spec cove.KeySpec) (*cove.NewKey, error) {
	var w wire.NewKey
	if err := c.call(ctx, http.MethodPost, "/v1/keys", nil, wire.KeyRequestFrom(spec), &w); err != nil {
		return nil, err
	}
	k, err := w.Key.Cove()
	if err != nil {
		return nil, err
	}
	return &cove.NewKey{Key: *k, Secret: w.Secret}, nil
}

// ListKeys implements cove.Service (GET /v1/keys).
func (c *Client) ListKeys(ctx context.Context) ([]*cove.Key, error) {
	var list wire.KeyList
	if err := c.call(ctx, http.MethodGet, "/v1/keys", nil, nil, &list); err != nil {
		return nil, err
	}
	out := make([]*cove.Key, 0, len(list.Keys))
	for _, w := range list.Keys {
		k, err := w.Cove()
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, nil
}

// RevokeKey implements cove.Service (DELETE /v1/keys/{id}).
func (c *Client) RevokeKey(ctx context.Context, id string) error {
	return c.call(ctx, http.MethodDelete, "/v1/keys/"+url.PathEscape(id), nil, nil, nil)
}

// WhoAmI implements cove.Service (GET /v1/whoami).
func (c *Client) WhoAmI(ctx context.Context) (*cove.Key, error) {
	var w wire.Key
	if err := c.call(ctx, http.MethodGet, "/v1/whoami", nil, nil, &w); err != nil {
		return nil, err
	}
	return w.Cove()
}
