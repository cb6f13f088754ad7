package client_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/client"
)

// connCounter is a transport that counts the connections it dials and
// those still open.
type connCounter struct {
	*http.Transport
	mu           sync.Mutex
	dialed, open int
}

func newConnCounter() *connCounter {
	cc := &connCounter{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	cc.MaxIdleConnsPerHost = 64
	var d net.Dialer
	cc.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		cc.mu.Lock()
		cc.dialed++
		cc.open++
		cc.mu.Unlock()
		return &countedConn{Conn: conn, cc: cc}, nil
	}
	return cc
}

func (cc *connCounter) counts() (dialed, open int) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	return cc.dialed, cc.open
}

type countedConn struct {
	net.Conn
	cc   *connCounter
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() {
		c.cc.mu.Lock()
		c.cc.open--
		c.cc.mu.Unlock()
	})
	return c.Conn.Close()
}

// TestStreamsReleaseWithoutClose: a stream read to its end, or up to its
// last event, and never closed, gives back its connection by itself:
// streams read to io.EOF one after the other reuse one connection, and
// those left after their exit event hold none a moment later.
func TestStreamsReleaseWithoutClose(t *testing.T) {
	e := newEnv(t)
	cc := newConnCounter()
	defer cc.CloseIdleConnections()
	c, err := client.New(e.url, e.adminKey, client.WithHTTPClient(&http.Client{Transport: cc}))
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	sb := e.sandbox(c, cove.SandboxSpec{})
	const n = 12

	// Read to io.EOF, as README's loop does, without Close.
	before, _ := cc.counts()
	for i := range n {
		st, err := c.Exec(ctx, sb.ID, cove.ExecRequest{Cmd: []string{"true"}})
		if err != nil {
			t.Fatal(err)
		}
		var exit bool
		for {
			ev, err := st.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("exec %d: %v", i, err)
			}
			exit = exit || ev.Type == cove.EventExit
		}
		if !exit {
			t.Fatalf("exec %d ended without its exit event", i)
		}
	}
	if dialed, _ := cc.counts(); dialed-before > 2 {
		t.Errorf("%d streams read to io.EOF without Close dialed %d connections: their answers were not released", n, dialed-before)
	}

	// Stop at the exit event, without Close: the connections go back to
	// the idle pool, which CloseIdleConnections empties.
	for i := range n {
		st, err := c.Exec(ctx, sb.ID, cove.ExecRequest{Shell: "echo hi"})
		if err != nil {
			t.Fatal(err)
		}
		for {
			ev, err := st.Next()
			if err != nil {
				t.Fatalf("run %d: %v before its exit event", i, err)
			}
			if ev.Type == cove.EventExit {
				break
			}
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		cc.CloseIdleConnections()
		_, open := cc.counts()
		if open == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d connections still in use after %d streams left at their exit event", open, n)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// Close stays valid, and idempotent, on a stream that released itself.
	st, err := c.Exec(ctx, sb.ID, cove.ExecRequest{Cmd: []string{"true"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cove.Collect(st); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := st.Next(); !errors.Is(err, client.ErrStreamClosed) {
		t.Fatalf("Next after Close: %v", err)
	}
}

// TestNextAfterExitIgnoresContext: once the exit event has come, Next
// says io.EOF even when the context is cancelled afterwards.
func TestNextAfterExitIgnoresContext(t *testing.T) {
	e := newEnv(t)
	sb := e.sandbox(e.admin, cove.SandboxSpec{})
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	st, err := e.admin.Exec(ctx, sb.ID, cove.ExecRequest{Cmd: []string{"echo", "x"}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for {
		ev, err := st.Next()
		if err != nil {
			t.Fatalf("before the exit event: %v", err)
		}
		if ev.Type == cove.EventExit {
			break
		}
	}
	cancel()
	for range 2 {
		if _, err := st.Next(); !errors.Is(err, io.EOF) {
			t.Fatalf("Next after the exit event and cancel: %v, want io.EOF", err)
		}
	}
}
