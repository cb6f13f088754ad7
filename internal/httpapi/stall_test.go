package httpapi

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestStalledClients checks that a client that stops sending an upload or
// stops reading a stream is dropped after the stall timeout.
func TestStalledClients(t *testing.T) {
	f := &fakeService{endless: true, closed: make(chan struct{})}
	srv := httptest.NewServer(New(f, Options{Auth: fakeAuth{}, StallTimeout: 200 * time.Millisecond}))
	defer srv.Close()
	dial := func(t *testing.T) net.Conn {
		c, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}

	t.Run("upload", func(t *testing.T) {
		c := dial(t)
		fmt.Fprintf(c, "PUT /v1/sandboxes/x/files/a HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer user\r\nContent-Length: 100\r\n\r\n0123456789")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("no answer to a stalled upload: %v", err)
		}
		if resp.StatusCode != http.StatusRequestTimeout {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})

	t.Run("stream", func(t *testing.T) {
		c := dial(t)
		body := `{"cmd":["yes"]}`
		fmt.Fprintf(c, "POST /v1/sandboxes/x/exec HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer user\r\nAccept: application/x-ndjson\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		// Read nothing: the server must give up and close the stream.
		select {
		case <-f.closed:
		case <-time.After(10 * time.Second):
			t.Fatal("the stream of a client that reads nothing was not closed")
		}
		// And the connection is dropped.
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.Copy(io.Discard, c); err != nil {
			t.Fatalf("the connection stayed open: %v", err)
		}
	})

	t.Run("steady client", func(t *testing.T) {
		// A client that keeps reading is not cut off, even past the
		// stall timeout.
		f2 := &fakeService{endless: true, closed: make(chan struct{})}
		srv2 := httptest.NewServer(New(f2, Options{Auth: fakeAuth{}, StallTimeout: 200 * time.Millisecond}))
		defer srv2.Close()
		req, _ := http.NewRequest("POST", srv2.URL+"/v1/sandboxes/x/exec", strings.NewReader(`{"cmd":["yes"]}`))
		req.Header.Set("Authorization", "Bearer user")
		req.Header.Set("Accept", "application/x-ndjson")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		br := bufio.NewReader(resp.Body)
		deadline := time.Now().Add(600 * time.Millisecond)
		for time.Now().Before(deadline) {
			if _, err := br.ReadString('\n'); err != nil {
				t.Fatalf("a steady reader was cut off: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}
