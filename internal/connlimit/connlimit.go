// Package connlimit bounds the connections a server accepts: in all, the
// next waiting in the kernel's backlog, and from one address.
package connlimit

import (
	"net"
	"sync"
	"time"
)

// Listener bounds the connections an HTTP server accepts from ln: at
// most total at once, the next waiting in the kernel's backlog, where
// they hold none of the server's file descriptors; and, if perHost is
// positive, at most perHost from one address, beyond which a connection
// is answered 503 and closed at once, so that one client cannot take
// every place. Without a bound, idle connections from anyone who reaches
// the port use up the server's descriptors, and with them everything the
// server does. Its connections pass CloseWrite through, which a tunnel
// needs to pass a half-close on.
func Listener(ln net.Listener, total, perHost int) net.Listener {
	return &limitListener{
		Listener: ln,
		slots:    make(chan struct{}, max(total, 1)),
		perHost:  perHost,
		hosts:    map[string]int{},
		done:     make(chan struct{}),
	}
}

type limitListener struct {
	net.Listener
	slots   chan struct{}
	perHost int

	mu    sync.Mutex
	hosts map[string]int

	done      chan struct{}
	closeOnce sync.Once
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		select {
		case l.slots <- struct{}{}:
		case <-l.done:
			return nil, net.ErrClosed
		}
		c, err := l.Listener.Accept()
		if err != nil {
			<-l.slots
			return nil, err
		}
		host := hostOf(c.RemoteAddr())
		l.mu.Lock()
		full := l.perHost > 0 && l.hosts[host] >= l.perHost
		if !full {
			l.hosts[host]++
		}
		l.mu.Unlock()
		if !full {
			return &limitConn{Conn: c, l: l, host: host}, nil
		}
		<-l.slots
		// The client learns why; the write must not hold the loop.
		c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		c.Write([]byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\nConnection: close\r\nRetry-After: 1\r\n\r\ntoo many connections from your address: close some first\n"))
		c.Close()
	}
}

// Close also ends an Accept that waits for a place.
func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

func (l *limitListener) release(host string) {
	l.mu.Lock()
	if l.hosts[host]--; l.hosts[host] <= 0 {
		delete(l.hosts, host)
	}
	l.mu.Unlock()
	<-l.slots
}

// hostOf is the address a connection came from, without its port.
func hostOf(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// limitConn gives its places back when closed.
type limitConn struct {
	net.Conn
	l    *limitListener
	host string
	once sync.Once
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.host) })
	return err
}

// CloseWrite half-closes the connection underneath (closes it, if it
// cannot be half-closed).
func (c *limitConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}
