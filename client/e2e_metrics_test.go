package client_test

import (
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/httpapi"
)

// TestMetricsSeeAStalledClient checks that an execution whose client
// stops reading its stream shows in /metrics as running while the server
// waits for the client, and as abandoned once the server drops it.
func TestMetricsSeeAStalledClient(t *testing.T) {
	// The execution counts as running from its start until the server
	// gives up on the client, StallTimeout after its writes block: the
	// scrapes below must see it in that window, on a loaded machine too.
	const stall = 4 * time.Second
	e := newEnv(t, func(o *httpapi.Options) { o.StallTimeout = stall })
	id := e.sandbox(e.admin, cove.SandboxSpec{Language: "bash"}).ID
	scrape := func() string {
		t.Helper()
		resp := e.do("GET", "/metrics", e.adminKey, nil)
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("/metrics: %d %s", resp.StatusCode, b)
		}
		return string(b)
	}
	if m := scrape(); !strings.Contains(m, "\ncove_executions_running 0\n") {
		t.Fatalf("before any execution, /metrics has no cove_executions_running 0:\n%s", m)
	}

	// A small receive buffer, and more output than the server's send
	// buffer holds, so that the server's writes block.
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) { syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	c, err := d.Dial("tcp", strings.TrimPrefix(e.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	body := fmt.Sprintf(`{"cmd":["yes"],"output_bytes":%d}`, cove.MaxOutputBytes)
	fmt.Fprintf(c, "POST /v1/sandboxes/%s/exec HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nAccept: application/x-ndjson\r\nContent-Length: %d\r\n\r\n%s", id, e.adminKey, len(body), body)
	// Read nothing. Until the server gives up on the client, the
	// execution runs. Its start may take a while on a busy machine; the
	// window in which it runs is at least stall long once it has.
	deadline := time.Now().Add(30 * time.Second)
	for m := scrape(); !strings.Contains(m, "\ncove_executions_running 1\n"); m = scrape() {
		if time.Now().After(deadline) {
			t.Fatalf("an execution whose client stalls is not counted as running:\n%s", grepLines(m, "cove_exec"))
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Then the server drops it, and it is counted as abandoned.
	deadline = time.Now().Add(30 * time.Second)
	for m := scrape(); !strings.Contains(m, "\ncove_executions_running 0\n") || !strings.Contains(m, "\ncove_exec_duration_seconds_count{verdict=\"abandoned\"} 1\n"); m = scrape() {
		if time.Now().After(deadline) {
			t.Fatalf("the dropped execution is not counted as abandoned:\n%s", grepLines(m, "cove_exec"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
