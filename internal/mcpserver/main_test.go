package mcpserver

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/agent"
	"github.com/cove-sandbox/cove/internal/runtime/native/nativetest"
	"github.com/cove-sandbox/cove/internal/service"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestMain(m *testing.M) {
	// The test binary doubles as the sandboxes' agent.
	if agent.IsAgentInvocation() {
		agent.Main()
		return
	}
	os.Exit(m.Run())
}

// newService returns a real service on native sandboxes, or skips when
// they cannot run here.
func newService(t *testing.T) *service.Service {
	t.Helper()
	be, _ := nativetest.New(t)
	svc := service.New(be, service.Options{Defaults: cove.DefaultLimits()})
	t.Cleanup(func() { svc.Close(context.Background()) })
	return svc
}

// conn is a client session with an MCP server in the same process.
type conn struct {
	t      *testing.T
	cs     *mcp.ClientSession
	done   chan error // Run's return, once the session has ended
	closed sync.Once
}

// connect runs srv over in-memory transports and connects a client.
func connect(t *testing.T, srv *Server) *conn {
	t.Helper()
	ct, st := mcp.NewInMemoryTransports()
	done := make(chan error, 1)
	go func() { done <- srv.Run(context.Background(), st) }()
	client := mcp.NewClient(&mcp.Implementation{Name: "cove-test", Version: "1"}, nil)
	cs, err := client.Connect(context.Background(), ct, nil)
	if err != nil {
		t.Fatalf("connecting: %v", err)
	}
	c := &conn{t: t, cs: cs, done: done}
	t.Cleanup(func() { c.close() })
	return c
}

// close ends the session and waits until the server has cleaned it up.
func (c *conn) close() {
	c.closed.Do(func() {
		c.cs.Close()
		if c.done == nil {
			return
		}
		select {
		case <-c.done:
		case <-time.After(time.Minute):
			c.t.Errorf("the server did not end the session")
		}
	})
}

// try calls a tool that must succeed, and decodes its structured content
// into out (unless nil). It may run on any goroutine.
func (c *conn) try(name string, args map[string]any, out any) (*mcp.CallToolResult, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := c.cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		return nil, fmt.Errorf("%s: protocol error: %v", name, err)
	}
	if res.IsError {
		return res, fmt.Errorf("%s(%v) failed: %s", name, args, text(res))
	}
	if out != nil {
		// Fields the result leaves out must not keep an earlier value.
		reflect.ValueOf(out).Elem().SetZero()
		b, err := json.Marshal(res.StructuredContent)
		if err != nil {
			return res, err
		}
		if err := json.Unmarshal(b, out); err != nil {
			return res, fmt.Errorf("%s: structured content %s: %v", name, b, err)
		}
	}
	return res, nil
}

// call calls a tool and fails the test on a protocol error; tool errors
// come back as results.
func (c *conn) call(name string, args map[string]any) *mcp.CallToolResult {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := c.cs.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		c.t.Fatalf("%s: protocol error: %v", name, err)
	}
	return res
}

// ok calls a tool that must succeed, and decodes its structured content
// into out (unless nil).
func (c *conn) ok(name string, args map[string]any, out any) *mcp.CallToolResult {
	c.t.Helper()
	res, err := c.try(name, args, out)
	if err != nil {
		c.t.Fatal(err)
	}
	return res
}

// fails calls a tool that must fail with a tool error whose text
// contains want.
func (c *conn) fails(name string, args map[string]any, want string) string {
	c.t.Helper()
	res := c.call(name, args)
	if !res.IsError {
		c.t.Fatalf("%s(%v) succeeded, want an error containing %q: %s", name, args, want, text(res))
	}
	if got := text(res); !strings.Contains(got, want) {
		c.t.Fatalf("%s(%v) error %q does not contain %q", name, args, got, want)
	}
	return text(res)
}

// text joins a result's text contents.
func text(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

// images returns a result's image contents.
func images(res *mcp.CallToolResult) []*mcp.ImageContent {
	var imgs []*mcp.ImageContent
	for _, c := range res.Content {
		if ic, ok := c.(*mcp.ImageContent); ok {
			imgs = append(imgs, ic)
		}
	}
	return imgs
}

// gone waits until a sandbox no longer exists.
func gone(t *testing.T, svc cove.Service, ctx context.Context, id string) bool {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := svc.GetSandbox(ctx, id); cove.ErrorCode(err) == cove.CodeNotFound {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}
