package client

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/coder/websocket"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/wire"
)

// ptyBuffer bounds the terminal output held for Read.
const ptyBuffer = 1 << 20

// OpenPTY implements cove.Service (GET /v1/sandboxes/{id}/pty, a
// WebSocket). Output is buffered (1 MiB) for Read; once Wait is called,
// output that does not fit is dropped rather than holding the program
// back. Cancelling ctx closes the terminal and kills the program.
func (c *Client) OpenPTY(ctx context.Context, id string, req cove.PTYRequest) (cove.PTY, error) {
	route := sandboxPath(id, "/pty")
	if err := checkPath(route); err != nil {
		return nil, err
	}
	u := c.base + route
	if q := wire.PTYQuery(req); len(q) > 0 {
		u += "?" + q.Encode()
	}
	u = "ws" + strings.TrimPrefix(u, "http") // http→ws, https→wss
	h := http.Header{}
	if c.key != "" {
		h.Set("Authorization", "Bearer "+c.key)
	}
	if c.userAgent != "" {
		h.Set("User-Agent", c.userAgent)
	}
	conn, resp, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPClient: c.http, HTTPHeader: h})
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return nil, cerr
		}
		if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols && resp.Body != nil {
			return nil, c.errorFrom(resp)
		}
		return nil, &cove.Error{Code: cove.CodeUnavailable, Message: "cannot open a terminal on " + c.base, Err: err}
	}
	conn.SetReadLimit(1 << 20)
	pctx, cancel := context.WithCancel(ctx)
	p := &pty{conn: conn, ctx: pctx, cancel: cancel, done: make(chan struct{})}
	p.cond = sync.NewCond(&p.mu)
	go p.readLoop(ctx)
	return p, nil
}

// pty is a terminal over a WebSocket.
type pty struct {
	conn   *websocket.Conn
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	cond     *sync.Cond // signals changes of buf, finished, waiting, closed
	buf      []byte     // output not read yet
	finished bool       // no more output will come
	waiting  bool       // Wait was called: drop output that does not fit
	closed   bool

	done   chan struct{} // closed when the connection has ended
	result *cove.ExecResult
	err    error
	once   sync.Once
}

// readLoop moves terminal bytes into the buffer that Read reads and takes
// the exit message's result.
func (p *pty) readLoop(callerCtx context.Context) {
	defer close(p.done)
	defer func() {
		p.mu.Lock()
		p.finished = true
		p.cond.Broadcast()
		p.mu.Unlock()
	}()
	for {
		typ, data, err := p.conn.Read(p.ctx)
		if err != nil {
			switch {
			case p.result != nil || p.err != nil:
			case callerCtx.Err() != nil:
				p.err = callerCtx.Err()
			default:
				p.err = &cove.Error{Code: cove.CodeUnavailable, Message: "the terminal closed before the program's result", Err: err}
			}
			return
		}
		if typ == websocket.MessageBinary {
			p.mu.Lock()
			// A reader that falls behind holds the program back, unless
			// nobody will read any more.
			for len(p.buf)+len(data) > ptyBuffer && len(p.buf) > 0 && !p.waiting && !p.closed {
				p.cond.Wait()
			}
			if len(p.buf)+len(data) <= ptyBuffer && !p.closed {
				p.buf = append(p.buf, data...)
				p.cond.Broadcast()
			}
			p.mu.Unlock()
			continue
		}
		var m wire.PTYMessage
		if json.Unmarshal(data, &m) != nil {
			continue
		}
		switch m.Type {
		case wire.PTYExit:
			if m.Result == nil {
				p.err = cove.Errorf(cove.CodeUnavailable, "malformed exit message from the server")
				continue
			}
			p.result, p.err = m.Result.Cove()
		case wire.PTYError:
			if m.Error != nil {
				p.err = m.Error.Err()
			}
		}
	}
}

// Read reads what the program prints; io.EOF once it has exited and its
// output is drained.
func (p *pty) Read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.buf) == 0 && !p.finished && !p.closed {
		p.cond.Wait()
	}
	if p.closed {
		return 0, io.ErrClosedPipe
	}
	if len(p.buf) == 0 {
		return 0, io.EOF
	}
	n := copy(b, p.buf)
	p.buf = p.buf[n:]
	if len(p.buf) == 0 {
		p.buf = nil
	}
	p.cond.Broadcast()
	return n, nil
}

// Write types into the terminal.
func (p *pty) Write(b []byte) (int, error) {
	if err := p.conn.Write(p.ctx, websocket.MessageBinary, b); err != nil {
		return 0, p.writeError(err)
	}
	return len(b), nil
}

// Resize changes the terminal's size.
func (p *pty) Resize(cols, rows int) error {
	b, _ := json.Marshal(&wire.PTYMessage{Type: wire.PTYResize, Cols: cols, Rows: rows})
	if err := p.conn.Write(p.ctx, websocket.MessageText, b); err != nil {
		return p.writeError(err)
	}
	return nil
}

func (p *pty) writeError(err error) error {
	select {
	case <-p.done:
		return io.ErrClosedPipe
	default:
	}
	if cerr := p.ctx.Err(); cerr != nil {
		return cerr
	}
	return &cove.Error{Code: cove.CodeUnavailable, Message: "writing to the terminal", Err: err}
}

// Wait waits for the program to exit and returns its result.
func (p *pty) Wait() (*cove.ExecResult, error) {
	p.mu.Lock()
	p.waiting = true
	p.cond.Broadcast()
	p.mu.Unlock()
	<-p.done
	if p.result != nil {
		return p.result, nil
	}
	return nil, p.err
}

// Close ends the session; a program still running is killed.
func (p *pty) Close() error {
	p.once.Do(func() {
		p.mu.Lock()
		p.closed = true
		p.cond.Broadcast()
		p.mu.Unlock()
		p.conn.Close(websocket.StatusNormalClosure, "")
		p.cancel()
	})
	<-p.done
	return nil
}
