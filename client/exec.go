package client

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/wire"
)

// Exec implements cove.Service (POST /v1/sandboxes/{id}/exec, streamed as
// NDJSON). A StdinReader streams to the program as the program runs: the
// request's body is the JSON request on one line followed by the reader's
// bytes (?stdin=stream). The end of the reader is the end of the
// program's standard input; an error reading it, like cancelling ctx or
// closing the stream, breaks off the execution. The reader is not
// closed.
func (c *Client) Exec(ctx context.Context, id string, req cove.ExecRequest) (cove.Stream, error) {
	if req.StdinReader != nil {
		r := req.StdinReader
		req.StdinReader, req.Stdin = nil, nil
		return c.openStdinStream(ctx, sandboxPath(id, "/exec"), wire.ExecRequestFrom(req), r)
	}
	return c.openStream(ctx, http.MethodPost, sandboxPath(id, "/exec"), nil, wire.ExecRequestFrom(req), true)
}

// RunCode implements cove.Service (POST /v1/sandboxes/{id}/code, streamed
// as NDJSON). A StdinReader streams as for Exec.
func (c *Client) RunCode(ctx context.Context, id string, req cove.CodeRequest) (cove.Stream, error) {
	if req.StdinReader != nil {
		r := req.StdinReader
		req.StdinReader, req.Stdin = nil, nil
		return c.openStdinStream(ctx, sandboxPath(id, "/code"), wire.CodeRequestFrom(req), r)
	}
	return c.openStream(ctx, http.MethodPost, sandboxPath(id, "/code"), nil, wire.CodeRequestFrom(req), true)
}

// Run implements cove.Service (POST /v1/run, streamed as NDJSON). The
// server destroys the sandbox (or resets it for the same key's next run)
// when the stream ends or is closed. A
// StdinReader streams as for Exec.
func (c *Client) Run(ctx context.Context, req cove.RunRequest) (cove.Stream, error) {
	if req.StdinReader != nil {
		r := req.StdinReader
		req.StdinReader, req.Stdin = nil, nil
		return c.openStdinStream(ctx, "/v1/run", wire.RunRequestFrom(req), r)
	}
	return c.openStream(ctx, http.MethodPost, "/v1/run", nil, wire.RunRequestFrom(req), true)
}

// StopExecution implements cove.Service (POST
// /v1/executions/{execID}/stop).
func (c *Client) StopExecution(ctx context.Context, execID string) error {
	return c.call(ctx, http.MethodPost, "/v1/executions/"+url.PathEscape(execID)+"/stop", nil, nil, nil)
}

// openStdinStream starts an execution whose standard input streams
// (?stdin=stream): the body is the JSON request on one line, then stdin
// copied from r as it comes, while the events are read. The end of r is
// the end of the program's standard input; an error reading r, like
// cancelling ctx or closing the stream, breaks off the request and with
// it the execution. r is not closed; a Read of r that blocks when the
// execution ends keeps the copy running until it returns.
func (c *Client) openStdinStream(ctx context.Context, p string, in any, r io.Reader) (cove.Stream, error) {
	line, err := json.Marshal(in)
	if err != nil {
		return nil, cove.Errorf(cove.CodeInvalid, "encoding the request: %w", err)
	}
	line = append(line, '\n')
	pr, pw := io.Pipe()
	go func() {
		_, err := pw.Write(line)
		if err == nil {
			_, err = io.Copy(pw, r)
		}
		pw.CloseWithError(err)
	}()
	st, err := c.openStreamWith(ctx, http.MethodPost, p, url.Values{"stdin": {"stream"}}, pr, "application/x-cove-exec-stream", true)
	if err != nil {
		// Stop the copy at its next write.
		pr.CloseWithError(err)
		return nil, err
	}
	return st, nil
}
