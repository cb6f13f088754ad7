package client

import (
	"context"
	"io"
	"net/http"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/wire"
)

// maxStdinBytes bounds a StdinReader read into a request; the server
// bounds JSON bodies further (1 MiB by default).
const maxStdinBytes = 64 << 20

// Exec implements cove.Service (POST /v1/sandboxes/{id}/exec, streamed as
// NDJSON). A StdinReader is read whole before the request is sent.
func (c *Client) Exec(ctx context.Context, id string, req cove.ExecRequest) (cove.Stream, error) {
	stdin, err := readStdin(req.StdinReader, req.Stdin)
	if err != nil {
		return nil, err
	}
	req.Stdin = stdin
	return c.openStream(ctx, http.MethodPost, sandboxPath(id, "/exec"), nil, wire.ExecRequestFrom(req), true)
}

// RunCode implements cove.Service (POST /v1/sandboxes/{id}/code, streamed
// as NDJSON).
func (c *Client) RunCode(ctx context.Context, id string, req cove.CodeRequest) (cove.Stream, error) {
	stdin, err := readStdin(req.StdinReader, req.Stdin)
	if err != nil {
		return nil, err
	}
	req.Stdin = stdin
	return c.openStream(ctx, http.MethodPost, sandboxPath(id, "/code"), nil, wire.CodeRequestFrom(req), true)
}

// Run implements cove.Service (POST /v1/run, streamed as NDJSON). The
// server destroys the sandbox when the stream ends or is closed.
func (c *Client) Run(ctx context.Context, req cove.RunRequest) (cove.Stream, error) {
	stdin, err := readStdin(req.StdinReader, req.Stdin)
	if err != nil {
		return nil, err
	}
	req.Stdin = stdin
	return c.openStream(ctx, http.MethodPost, "/v1/run", nil, wire.RunRequestFrom(req), true)
}

// readStdin returns the standard input of a request: r read whole when it
// is set, else b.
func readStdin(r io.Reader, b []byte) ([]byte, error) {
	if r == nil {
		return b, nil
	}
	data, err := io.ReadAll(io.LimitReader(r, maxStdinBytes+1))
	if err != nil {
		return nil, cove.Errorf(cove.CodeInvalid, "reading standard input: %w", err)
	}
	if len(data) > maxStdinBytes {
		return nil, cove.Errorf(cove.CodeInvalid, "standard input is larger than %s: write it to a file instead", cove.FormatBytes(maxStdinBytes))
	}
	return data, nil
}
