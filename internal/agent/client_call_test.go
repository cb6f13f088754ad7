package agent

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/yamux"
)

// TestCallGivesUpWithItsContext: a request to an agent that does not answer
// ends when its context does, not when the stream's close times out.
func TestCallGivesUpWithItsContext(t *testing.T) {
	agentSide, hostSide := net.Pipe()
	sess, err := yamux.Server(agentSide, yamuxConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	go func() {
		for {
			st, err := sess.AcceptStream()
			if err != nil {
				return
			}
			// Read the request, then never answer.
			go readFrame(st)
		}
	}()
	cs, err := yamux.Client(hostSide, yamuxConfig())
	if err != nil {
		t.Fatal(err)
	}
	c := &Client{sess: cs}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = c.Reset(ctx)
	if took := time.Since(start); !errors.Is(err, context.DeadlineExceeded) || took > time.Second {
		t.Fatalf("reset of a silent agent ended after %s with %v, want the context's deadline after 50ms", took.Round(time.Millisecond), err)
	}
}
