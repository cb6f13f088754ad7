package client

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/wire"
)

func processPath(id string, pid int, rest string) string {
	return sandboxPath(id, "/processes/"+strconv.Itoa(pid)+rest)
}

// StartProcess implements cove.Service (POST /v1/sandboxes/{id}/processes).
func (c *Client) StartProcess(ctx context.Context, id string, req cove.ProcessRequest) (*cove.Process, error) {
	var w wire.Process
	if err := c.call(ctx, http.MethodPost, sandboxPath(id, "/processes"), nil, wire.ProcessRequestFrom(req), &w); err != nil {
		return nil, err
	}
	return w.Cove()
}

// ListProcesses implements cove.Service (GET /v1/sandboxes/{id}/processes).
func (c *Client) ListProcesses(ctx context.Context, id string) ([]*cove.Process, error) {
	var list wire.ProcessList
	if err := c.call(ctx, http.MethodGet, sandboxPath(id, "/processes"), nil, nil, &list); err != nil {
		return nil, err
	}
	out := make([]*cove.Process, 0, len(list.Processes))
	for _, w := range list.Processes {
		p, err := w.Cove()
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// GetProcess implements cove.Service (GET .../processes/{pid}).
func (c *Client) GetProcess(ctx context.Context, id string, pid int) (*cove.Process, error) {
	var w wire.Process
	if err := c.call(ctx, http.MethodGet, processPath(id, pid, ""), nil, nil, &w); err != nil {
		return nil, err
	}
	return w.Cove()
}

// ProcessLogs implements cove.Service (GET .../processes/{pid}/logs,
// streamed as NDJSON). With follow, the stream goes on until the process
// exits and ends with its exit event. Without follow, it gives the output
// so far: the logs of a process that still runs end with io.EOF and no
// exit event, which cove.Collect reports as an error, so read them with
// Next until io.EOF (or use WaitProcess first).
func (c *Client) ProcessLogs(ctx context.Context, id string, pid int, follow bool) (cove.Stream, error) {
	q := url.Values{}
	if follow {
		q.Set("follow", "true")
	}
	return c.openStream(ctx, http.MethodGet, processPath(id, pid, "/logs"), q, nil, false)
}

// waitRound is how long one request of WaitProcess waits on the server
// before it asks again.
const waitRound = 60 * time.Second

// WaitProcess implements cove.Service (POST .../processes/{pid}/wait,
// asked again every minute until the process has exited or ctx ends).
func (c *Client) WaitProcess(ctx context.Context, id string, pid int) (*cove.Process, error) {
	q := url.Values{"timeout": {waitRound.String()}}
	for {
		start := time.Now()
		var w wire.Process
		if err := c.call(ctx, http.MethodPost, processPath(id, pid, "/wait"), q, nil, &w); err != nil {
			return nil, err
		}
		p, err := w.Cove()
		if err != nil || p.State != cove.ProcessRunning {
			return p, err
		}
		// A server that answers before the round is over (one that
		// bounds the wait below a minute) is not asked again at once.
		if time.Since(start) < time.Second {
			t := time.NewTimer(time.Second)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil, ctx.Err()
			case <-t.C:
			}
		}
	}
}

// WriteProcessStdin implements cove.Service (POST .../processes/{pid}/stdin).
func (c *Client) WriteProcessStdin(ctx context.Context, id string, pid int, data []byte, eof bool) error {
	q := url.Values{}
	if eof {
		q.Set("eof", "true")
	}
	req, err := c.request(ctx, http.MethodPost, processPath(id, pid, "/stdin"), q, bytes.NewReader(data))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := c.send(req)
	if err != nil {
		return err
	}
	closeBody(resp)
	return nil
}

// SignalProcess implements cove.Service (POST .../processes/{pid}/signal).
func (c *Client) SignalProcess(ctx context.Context, id string, pid int, signal string) error {
	return c.call(ctx, http.MethodPost, processPath(id, pid, "/signal"), nil, &wire.SignalRequest{Signal: signal}, nil)
}
