package connlimit

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestListener checks both bounds of Listener: a client past
// its address's bound is answered 503 at once, and connections past the
// total wait, unanswered, until one closes.
func TestListener(t *testing.T) {
	serve := func(t *testing.T, total, perHost int) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })}
		go srv.Serve(Listener(ln, total, perHost))
		t.Cleanup(func() { srv.Close() })
		return ln.Addr().String()
	}
	dial := func(t *testing.T, addr string) net.Conn {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	// ask sends a request on c and returns the status line, or "" when
	// no answer comes within wait.
	ask := func(c net.Conn, wait time.Duration) string {
		io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(wait))
		line, _ := bufio.NewReader(c).ReadString('\n')
		return strings.TrimSpace(line)
	}

	t.Run("per address", func(t *testing.T) {
		addr := serve(t, 10, 2)
		a, b := dial(t, addr), dial(t, addr)
		if ask(a, time.Second) != "HTTP/1.1 200 OK" || ask(b, time.Second) != "HTTP/1.1 200 OK" {
			t.Fatal("the first two connections were not served")
		}
		if got := ask(dial(t, addr), time.Second); got != "HTTP/1.1 503 Service Unavailable" {
			t.Fatalf("a third connection from the same address: %q, want a 503", got)
		}
		a.Close()
		time.Sleep(50 * time.Millisecond)
		if got := ask(dial(t, addr), time.Second); got != "HTTP/1.1 200 OK" {
			t.Fatalf("after one closed: %q", got)
		}
	})
	t.Run("total", func(t *testing.T) {
		addr := serve(t, 2, 100)
		a, b := dial(t, addr), dial(t, addr)
		ask(a, time.Second)
		ask(b, time.Second)
		c := dial(t, addr)
		if got := ask(c, 300*time.Millisecond); got != "" {
			t.Fatalf("a connection past the total was answered: %q", got)
		}
		a.Close()
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if line, _ := bufio.NewReader(c).ReadString('\n'); strings.TrimSpace(line) != "HTTP/1.1 200 OK" {
			t.Fatalf("once a place was free: %q", line)
		}
	})
}
