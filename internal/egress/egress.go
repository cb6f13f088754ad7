// Package egress is the HTTP proxy through which a sandbox reaches the
// hosts its network limit allows, and nothing else. A sandbox has no route
// out of its network namespace: cove listens on a port of the sandbox's
// own loopback (Addr), and dials from the host the hosts that the
// sandbox's rules name, refusing addresses of the host and its private
// networks unless the operator lists them. Programs find the proxy through
// the usual environment variables (Env).
package egress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/netutil"

	"github.com/cove-sandbox/cove"
)

// Addr is where the proxy listens inside a sandbox.
const Addr = "127.0.0.1:3128"

// Env is the environment that points programs at the proxy: pip, curl,
// requests, urllib and npm read these.
func Env() map[string]string {
	const u = "http://" + Addr
	return map[string]string{
		"HTTP_PROXY": u, "HTTPS_PROXY": u, "http_proxy": u, "https_proxy": u,
		"NO_PROXY": "localhost,127.0.0.1,::1", "no_proxy": "localhost,127.0.0.1,::1",
	}
}

// Limits on what one sandbox's proxy holds at once.
const (
	// maxConns bounds the connections from the sandbox that cove serves
	// at once (each tunnel holds one more, to its destination).
	maxConns    = 64
	dialTimeout = 10 * time.Second
	// idleTimeout ends a tunnel or request in which nothing has moved
	// for this long.
	idleTimeout = 5 * time.Minute
)

// Policy decides which destinations a sandbox may reach.
type Policy struct {
	rules   []cove.NetworkRule
	private []netip.Prefix
}

// NewPolicy returns the policy of a network limit. private lists the
// non-public addresses (loopback, private networks, link-local) that the
// operator lets sandboxes reach; any other such address is refused even
// when a rule names its host.
func NewPolicy(network string, private []netip.Prefix) (*Policy, error) {
	rules, err := cove.ParseNetwork(network)
	if err != nil {
		return nil, err
	}
	return &Policy{rules: rules, private: private}, nil
}

// Enabled reports whether the policy allows any host at all.
func (p *Policy) Enabled() bool { return len(p.rules) > 0 }

// allowHost reports whether a rule lets the sandbox reach host on port.
func (p *Policy) allowHost(host string, port int) bool {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if a, err := netip.ParseAddr(host); err == nil {
		host = a.Unmap().String()
	}
	for _, r := range p.rules {
		if r.Allows(host, port) {
			return true
		}
	}
	return false
}

// allowAddr reports whether the sandbox may connect to a, once resolved:
// public unicast addresses, and those of the operator's private prefixes.
func (p *Policy) allowAddr(a netip.Addr) bool {
	a = a.Unmap()
	for _, pr := range p.private {
		if pr.Contains(a) {
			return true
		}
	}
	if !a.IsGlobalUnicast() || a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() {
		return false
	}
	for _, pr := range reserved {
		if pr.Contains(a) {
			return false
		}
	}
	return true
}

// reserved are non-public ranges that netip does not classify.
var reserved = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"), // shared address space (carrier NAT)
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"), // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("2001:db8::/32"),
}

// refusal is a destination the policy refuses, with the reason to show.
type refusal struct{ msg string }

func (r *refusal) Error() string { return r.msg }

// Proxy serves one sandbox's connections.
type Proxy struct {
	policy  *Policy
	network string
	log     *slog.Logger
	srv     *http.Server
	dialer  net.Dialer
	tr      *http.Transport

	mu      sync.Mutex
	tunnels map[net.Conn]struct{}
	closed  bool
}

// Serve serves the proxy on ln, which accepts the sandbox's connections,
// until Close. network is the limit the policy came from, for messages.
func Serve(ln net.Listener, policy *Policy, network string, log *slog.Logger) *Proxy {
	p := &Proxy{policy: policy, network: network, log: log, tunnels: map[net.Conn]struct{}{}}
	p.dialer = net.Dialer{Timeout: dialTimeout, Control: p.control}
	p.tr = &http.Transport{
		Proxy:                 nil,
		DialContext:           p.dial,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: idleTimeout,
	}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 30 * time.Second, IdleTimeout: idleTimeout,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	// At most maxConns connections from the sandbox are accepted at once;
	// more wait in the kernel's backlog, holding nothing of cove's.
	go p.srv.Serve(netutil.LimitListener(ln, maxConns))
	return p
}

// Close stops the proxy and ends every connection through it.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	for c := range p.tunnels {
		c.Close()
	}
	p.mu.Unlock()
	err := p.srv.Close()
	p.tr.CloseIdleConnections()
	return err
}

// control checks the address a connection is about to be made to, after
// name resolution, so that a name that resolves to the host's own or
// private addresses is refused.
func (p *Proxy) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return &refusal{fmt.Sprintf("cannot check address %s", address)}
	}
	if !p.policy.allowAddr(ap.Addr()) {
		return &refusal{fmt.Sprintf("%s is a private or reserved address, which sandboxes may not reach (the operator can allow it with network_private)", ap.Addr())}
	}
	return nil
}

// dial connects to addr (host:port) if the policy allows it.
func (p *Proxy) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, &refusal{fmt.Sprintf("invalid destination %q", addr)}
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, &refusal{fmt.Sprintf("invalid port in %q", addr)}
	}
	if !p.policy.allowHost(host, port) {
		return nil, &refusal{fmt.Sprintf("%s is not in this sandbox's network limit (%s): create the sandbox with it, e.g. --network %s", addr, p.network, suggest(host, port))}
	}
	return p.dialer.DialContext(ctx, "tcp", addr)
}

// suggest is the network rule that would allow host on port.
func suggest(host string, port int) string {
	if port == 80 || port == 443 {
		return host
	}
	return net.JoinHostPort(host, strconv.Itoa(port))
}

// ServeHTTP handles CONNECT tunnels (HTTPS) and plain HTTP requests in
// absolute form.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodConnect {
		p.connect(w, r)
		return
	}
	if !r.URL.IsAbs() || r.URL.Scheme != "http" {
		http.Error(w, "cove: this is an HTTP proxy: send http:// URLs in absolute form, or CONNECT host:port for anything else", http.StatusBadRequest)
		return
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			// The Host header is the name the policy checked, so that
			// a server that hosts many names serves the allowed one.
			pr.Out.URL = pr.In.URL
			pr.Out.Host = pr.In.URL.Host
			pr.Out.Header.Del("Proxy-Authorization")
			pr.Out.Header.Del("Proxy-Connection")
		},
		Transport:    p.tr,
		ErrorHandler: p.fail,
	}
	rp.ServeHTTP(w, r)
}

// connect opens a tunnel to the request's host and port.
func (p *Proxy) connect(w http.ResponseWriter, r *http.Request) {
	addr := r.Host
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(addr, "443")
	}
	up, err := p.dial(r.Context(), "tcp", addr)
	if err != nil {
		p.fail(w, r, err)
		return
	}
	down, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		up.Close()
		return
	}
	if _, err := io.WriteString(down, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		down.Close()
		up.Close()
		return
	}
	if !p.track(down, up) {
		return
	}
	defer p.untrack(down, up)
	// Bytes the client sent after its CONNECT line are already buffered.
	if n := buf.Reader.Buffered(); n > 0 {
		b, _ := buf.Reader.Peek(n)
		if _, err := up.Write(b); err != nil {
			return
		}
	}
	done := make(chan struct{}, 2)
	go func() { pipe(up, down); done <- struct{}{} }()
	go func() { pipe(down, up); done <- struct{}{} }()
	<-done
	<-done
}

// pipe copies src to dst, each read waiting at most idleTimeout, then
// half-closes dst.
func pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		src.SetReadDeadline(time.Now().Add(idleTimeout))
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	if tc, ok := dst.(interface{ CloseWrite() error }); ok {
		tc.CloseWrite()
	} else {
		dst.Close()
	}
}

// track records a tunnel's connections for Close; it reports false (and
// closes them) when the proxy has closed.
func (p *Proxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	for _, c := range cs {
		p.tunnels[c] = struct{}{}
	}
	return true
}

func (p *Proxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		c.Close()
		delete(p.tunnels, c)
	}
}

// fail answers a request the proxy could not serve: 403 for a refused
// destination, 502 for one that could not be reached.
func (p *Proxy) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ref *refusal
	status := http.StatusBadGateway
	msg := err.Error()
	switch {
	case errors.As(err, &ref):
		status, msg = http.StatusForbidden, ref.msg
	case errors.Is(err, context.Canceled):
		return
	}
	p.log.Debug("egress refused or failed", "method", r.Method, "host", r.Host, "status", status, "err", msg)
	// The reason phrase carries the message too: clients such as pip and
	// Python's http.client show it ("Tunnel connection failed: 403 ...")
	// and not the body.
	body := "cove: " + msg + "\n"
	reason := strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, "cove: "+msg)
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		io.WriteString(w, body)
		return
	}
	defer conn.Close()
	fmt.Fprintf(buf, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", status, reason, len(body), body)
	buf.Flush()
}
