// Package egresstest stands a server on the host for the tests of
// sandboxes' network limits.
package egresstest

import (
	"io"
	"net"
	"net/http"
	"net/netip"
	"testing"
)

// Body is what HostServer answers.
const Body = "from the host"

// Private is the operator's private address (network_private) that opens
// HostServer to sandboxes whose network limit names it.
var Private = netip.MustParsePrefix("127.0.0.2/32")

// HostServer serves Body over HTTP on 127.0.0.2 until the test ends, and
// returns its address. 127.0.0.2 is the host's loopback but not a
// sandbox's, whose 127.0.0.1 is its own: a sandbox reaches the server only
// through its proxy.
func HostServer(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatalf("listening on 127.0.0.2 (the loopback's whole 127.0.0.0/8 is the host's on Linux): %v", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, Body) })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}
