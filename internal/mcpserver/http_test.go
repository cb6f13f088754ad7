package mcpserver

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/httpapi"
)

// bearer adds an API key to every request.
type bearer struct {
	key  string
	base http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.key)
	return b.base.RoundTrip(r)
}

// TestStreamableHTTP serves MCP at /mcp of the real REST API handler on
// 127.0.0.1, with its key authentication: a key's session acts for that
// key, another key cannot use it, no key gets 401, and closing the
// session deletes its sandboxes.
func TestStreamableHTTP(t *testing.T) {
	svc := newService(t)
	ctx := context.Background()
	alice, err := svc.CreateKey(ctx, cove.KeySpec{Name: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	bob, err := svc.CreateKey(ctx, cove.KeySpec{Name: "bob"})
	if err != nil {
		t.Fatal(err)
	}
	srv := New(svc, Options{})
	ts := httptest.NewServer(httpapi.New(svc, httpapi.Options{Auth: svc, MCP: srv.Handler()}))
	t.Cleanup(ts.Close)

	initialize := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"curl","version":"1"}}}`
	post := func(key, session string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("POST", ts.URL+"/mcp", strings.NewReader(initialize))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		if session != "" {
			req.Header.Set("Mcp-Session-Id", session)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := post("", ""); resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("without a key: %d %v", resp.StatusCode, resp.Header)
	}
	if resp := post("cove_not_a_key_0123456789", ""); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("with a wrong key: %d", resp.StatusCode)
	}

	client := mcp.NewClient(&mcp.Implementation{Name: "cove-test", Version: "1"}, nil)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{
		Endpoint:   ts.URL + "/mcp",
		HTTPClient: &http.Client{Transport: bearer{alice.Secret, http.DefaultTransport}},
	}, nil)
	if err != nil {
		t.Fatalf("connecting with a key: %v", err)
	}
	c := &conn{t: t, cs: cs}

	var out execOutput
	c.ok("run_code", map[string]any{"language": "python", "code": "print(6 * 7)"}, &out)
	if out.Stdout != "42\n" {
		t.Errorf("run_code over HTTP: %+v", out)
	}
	var sb sandboxOutput
	c.ok("create_sandbox", map[string]any{}, &sb)
	got, err := svc.GetSandbox(ctx, sb.SandboxID)
	if err != nil || got.Owner != alice.ID {
		t.Fatalf("the sandbox belongs to %q, want alice (%s): %v", got.Owner, alice.ID, err)
	}
	// Bob's key sees none of it, and cannot use Alice's session.
	if _, err := svc.GetSandbox(cove.WithKey(ctx, &bob.Key), sb.SandboxID); cove.ErrorCode(err) != cove.CodeNotFound {
		t.Errorf("bob sees alice's sandbox: %v", err)
	}
	if resp := post(bob.Secret, cs.ID()); resp.StatusCode != http.StatusForbidden {
		t.Errorf("bob using alice's session: %d", resp.StatusCode)
	}

	// Closing the session (DELETE /mcp) deletes the sandbox it made.
	if err := cs.Close(); err != nil {
		t.Fatal(err)
	}
	if !gone(t, svc, ctx, sb.SandboxID) {
		t.Errorf("the session's sandbox outlived the session")
	}
}
