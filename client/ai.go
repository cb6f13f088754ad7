package client

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/wire"
)

// Analyze implements cove.Service (POST /v1/ai/{action}, streamed as
// NDJSON): text chunks as Claude writes them, the fix loop's steps as
// they run, and the result last.
func (c *Client) Analyze(ctx context.Context, req cove.AIRequest) (cove.AIStream, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(wire.AIRequestFrom(req))
	if err != nil {
		return nil, cove.Errorf(cove.CodeInvalid, "encoding the request: %w", err)
	}
	resp, cancel, err := c.sendForNDJSON(ctx, http.MethodPost, "/v1/ai/"+url.PathEscape(string(req.Action)), nil, bytes.NewReader(b), "application/json")
	if err != nil {
		return nil, err
	}
	return newNDJSON(ctx, cancel, resp, "the analysis ended before its result", decodeAIEvent), nil
}

// decodeAIEvent decodes an analysis's event.
func decodeAIEvent(line []byte) (cove.AIEvent, bool, error) {
	var w wire.AIEvent
	if err := json.Unmarshal(line, &w); err != nil {
		return cove.AIEvent{}, true, cove.Errorf(cove.CodeUnavailable, "malformed event from the server: %v", err)
	}
	ev, err := w.Cove()
	return ev, err != nil || ev.Type == cove.AIEventResult, err
}
