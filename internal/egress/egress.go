// Package egress is the HTTP proxy through which a sandbox reaches the
// hosts its network limit allows, and nothing else. A sandbox has no route
// out of its network namespace: cove listens on a port of the sandbox's
// own loopback (Addr), and dials from the host the hosts that the
// sandbox's rules name, refusing addresses of the host and its private
// networks unless the operator lists them. Programs find the proxy through
// the usual environment variables (Env).
package egress

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/connlimit"
)

// Addr is where the proxy listens inside a sandbox.
const Addr = "127.0.0.1:3128"

// Env is the environment that points programs at the proxy: pip, curl,
// requests, urllib and npm read these. Node reads them for its built-in
// fetch and http modules only with NODE_USE_ENV_PROXY=1 (from Node 22.21
// and 24; older Node ignores it).
func Env() map[string]string {
	const u = "http://" + Addr
	return map[string]string{
		"HTTP_PROXY": u, "HTTPS_PROXY": u, "http_proxy": u, "https_proxy": u,
		"NO_PROXY": "localhost,127.0.0.1,::1", "no_proxy": "localhost,127.0.0.1,::1",
		"NODE_USE_ENV_PROXY": "1",
	}
}

// Bounds of one sandbox's proxy.
const (
	// maxConns bounds the connections from the sandbox that cove serves
	// at once (each tunnel holds one more, to its destination).
	maxConns    = 64
	dialTimeout = 10 * time.Second
	// idleTimeout ends a tunnel or request in which nothing has moved
	// for this long.
	idleTimeout = 5 * time.Minute
	// maxHeaderBytes bounds the header of a request from the sandbox and
	// of a response to it, which the proxy holds in cove's memory, not
	// the sandbox's (Go's defaults are 1 MiB and 10 MiB).
	maxHeaderBytes = 64 << 10
	// maxIdleConns bounds the idle connections to plain-HTTP hosts kept
	// for reuse, over all hosts: a sandbox allowed many names would
	// otherwise leave one open per name.
	maxIdleConns = 8
	// messageNetwork bounds how much of the network limit a refusal
	// quotes.
	messageNetwork = 200
)

// Phrases of the proxy's refusals, which programs show in their errors;
// RefusalIn finds them there.
const (
	notInLimit   = "is not in this sandbox's network limit"
	neverReached = "which sandboxes may not reach"
	listAlone    = "list it alone to allow it"
)

// Refusal is a kind of refusal by the proxy.
type Refusal int

// The kinds of refusal.
const (
	// NoRefusal: the output shows none.
	NoRefusal Refusal = iota
	// NotInLimit: a host the sandbox's network limit does not name.
	NotInLimit
	// OperatorOnly: an address that no network limit opens (private,
	// reserved, the host's own), which only the operator can allow.
	OperatorOnly
)

// RefusalIn reports which refusal of the proxy a program's output shows,
// for front ends to say what to do about it.
func RefusalIn(output string) Refusal {
	switch {
	case strings.Contains(output, notInLimit):
		return NotInLimit
	case strings.Contains(output, neverReached), strings.Contains(output, listAlone):
		return OperatorOnly
	}
	return NoRefusal
}

// Policy decides which destinations a sandbox may reach.
type Policy struct {
	rules   []cove.NetworkRule
	private []netip.Prefix
	// hostAddrs returns the addresses of the host's own interfaces,
	// which a sandbox may not reach whether they are public or not: a
	// service of the host that listens on all of them is reached through
	// any.
	hostAddrs func() ([]netip.Addr, error)
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
	return &Policy{rules: rules, private: private, hostAddrs: interfaceAddrs}, nil
}

// interfaceAddrs returns the addresses of the host's network interfaces,
// read afresh each time: they may change while a sandbox runs.
func interfaceAddrs() ([]netip.Addr, error) {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil, err
	}
	out := make([]netip.Addr, 0, len(addrs))
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(n.IP); ok {
				out = append(out, ip.Unmap())
			}
		}
	}
	return out, nil
}

// CheckAddresses refuses, as invalid, a network limit that names an
// address no sandbox may reach (private, reserved, the host's own, unless
// the operator allows it): a rule that could never let anything through
// is said when the sandbox is made rather than when its program fails.
func (p *Policy) CheckAddresses() error {
	for _, r := range p.rules {
		a, err := netip.ParseAddr(r.Host)
		if err != nil {
			continue // a name, checked when it is resolved
		}
		if ok, why := p.allowAddr(a); !ok {
			return cove.Errorf(cove.CodeInvalid, "network limit: %s is %s", r.Host, why)
		}
	}
	return nil
}

// Enabled reports whether the policy allows any host at all.
func (p *Policy) Enabled() bool { return len(p.rules) > 0 }

// allowHost reports whether a rule lets the sandbox reach host on port,
// and returns the host as the rule matched it, which is what is dialled:
// lower case, without a trailing dot, an IPv4-mapped address as IPv4.
// A name of other than ASCII characters is refused, since strings.ToLower
// would fold some of them into ASCII ("\u212a" into "k") while the
// resolver would look up the name as given.
func (p *Policy) allowHost(host string, port int) (string, bool) {
	if !isASCII(host) {
		return "", false
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if a, err := netip.ParseAddr(host); err == nil {
		host = a.Unmap().String()
	}
	for _, r := range p.rules {
		if r.Allows(host, port) {
			return host, true
		}
	}
	return "", false
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// allowAddr reports whether the sandbox may connect to a, once resolved:
// public unicast addresses that are not the host's own, and those of the
// operator's private prefixes. It returns the reason for a refusal, which
// follows "<a> is ", and how the operator could allow the address.
//
// The host's own addresses (but for loopback, which an operator lists
// for the host) are allowed only when network_private lists one alone:
// an operator who lists the local network for a mirror on it does not
// mean the host's services that listen on all its addresses.
func (p *Policy) allowAddr(a netip.Addr) (bool, string) {
	a = a.Unmap().WithZone("")
	own, ownErr := p.isHostAddr(a)
	const (
		refused    = ", " + neverReached + " (the operator can allow it with network_private)"
		notPublic  = "a private or reserved address" + refused
		hostItself = "an address of the host itself"
	)
	for _, pr := range p.private {
		if !pr.Contains(a) {
			continue
		}
		switch {
		case a.IsLoopback() || pr.IsSingleIP():
			return true, ""
		case ownErr != nil:
			return false, ownErr.Error()
		case own:
			return false, hostItself + ", which network_private lists only as part of " + pr.String() + ": " + listAlone
		}
		return true, ""
	}
	if !a.IsGlobalUnicast() || a.IsPrivate() || a.IsLoopback() || a.IsLinkLocalUnicast() {
		return false, notPublic
	}
	for _, pr := range reserved {
		if pr.Contains(a) {
			return false, notPublic
		}
	}
	// An IPv6 address that carries an IPv4 one reaches it through a
	// NAT64 gateway or a 6to4 relay: it is allowed only as that is.
	if v4, ok := embeddedIPv4(a); ok {
		if ok, why := p.allowAddr(v4); !ok {
			return false, "an IPv6 form of " + v4.String() + ", " + why
		}
	}
	if ownErr != nil {
		return false, ownErr.Error()
	}
	if own {
		return false, hostItself + refused
	}
	return true, ""
}

// isHostAddr reports whether a is an address of the host's interfaces.
func (p *Policy) isHostAddr(a netip.Addr) (bool, error) {
	own, err := p.hostAddrs()
	if err != nil {
		return false, fmt.Errorf("an address cove could not check against the host's own addresses (%v)", err)
	}
	for _, h := range own {
		if h.WithZone("") == a {
			return true, nil
		}
	}
	return false, nil
}

// reserved are non-public ranges that netip does not classify: special
// purpose ranges (RFC 6890 and its updates) that are not globally
// reachable, and deprecated forms of IPv6 address.
var reserved = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"), // shared address space (carrier NAT)
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation (TEST-NET-1)
	netip.MustParsePrefix("192.88.99.0/24"),  // 6to4 relay anycast
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // documentation (TEST-NET-2)
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation (TEST-NET-3)
	netip.MustParsePrefix("240.0.0.0/4"),
	// Azure's WireServer: a public address that is not the Internet but a
	// service of the host machine, which every Azure VM reaches and which
	// hands out the VM agent's goal state and extension settings. Azure's
	// agent lets only root reach it; the proxy dials as cove's user,
	// root on most servers. (The metadata services of Azure, AWS, Google
	// and others are at link-local or private addresses, refused above.)
	netip.MustParsePrefix("168.63.129.16/32"),
	netip.MustParsePrefix("::/96"),           // IPv4-compatible (deprecated)
	netip.MustParsePrefix("::ffff:0:0:0/96"), // IPv4-translated
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("100::/64"),        // discard-only
	netip.MustParsePrefix("2001::/32"),       // Teredo
	netip.MustParsePrefix("2001:2::/48"),     // benchmarking
	netip.MustParsePrefix("2001:10::/28"),    // ORCHID (deprecated)
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("3fff::/20"),       // documentation
	netip.MustParsePrefix("5f00::/16"),       // segment routing SIDs
	netip.MustParsePrefix("fec0::/10"),       // site-local (deprecated)
}

var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96") // well-known NAT64 prefix
	sixToFour = netip.MustParsePrefix("2002::/16")
)

// embeddedIPv4 returns the IPv4 address that an IPv6 address of the
// well-known NAT64 prefix or of 6to4 leads to.
func embeddedIPv4(a netip.Addr) (netip.Addr, bool) {
	b := a.As16()
	switch {
	case !a.Is6():
	case nat64.Contains(a):
		return netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]}), true
	case sixToFour.Contains(a):
		return netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]}), true
	}
	return netip.Addr{}, false
}

// refusal is a destination the policy refuses, with the reason to show.
type refusal struct {
	msg string
	// resolved is set for a refusal of an address after name resolution.
	resolved bool
}

func (r *refusal) Error() string { return r.msg }

// Outcome is what became of one request to a proxy, for metrics.
type Outcome string

// The outcomes of requests.
const (
	// Allowed: a tunnel was opened, or a response came back.
	Allowed Outcome = "allowed"
	// Refused: the destination is not one the sandbox may reach (403).
	Refused Outcome = "refused"
	// Failed: an allowed destination could not be reached (502).
	Failed Outcome = "failed"
	// Busy: the proxies of the server serve their most connections (503).
	Busy Outcome = "busy"
	// BadRequest: not a proxy request (400).
	BadRequest Outcome = "bad_request"
)

// Options configure a proxy; all are optional.
type Options struct {
	Log *slog.Logger
	// Conns bounds the connections of all the proxies that share it.
	Conns *Conns
	// Observe is told the outcome of each request.
	Observe func(Outcome)
}

// Proxy serves one sandbox's connections.
type Proxy struct {
	policy  *Policy
	network string
	log     *slog.Logger
	observe func(Outcome)
	srv     *http.Server
	dialer  net.Dialer
	tr      *http.Transport
	idle    time.Duration // idleTimeout, or less in tests

	mu      sync.Mutex
	tunnels map[net.Conn]struct{}
	closed  bool
}

// Conns bounds the connections that all the proxies of one server serve
// at once. Each holds one of cove's file descriptors, two with its
// destination's: without a bound over all sandboxes, one user's many
// sandboxes, each within its own maxConns, could take every descriptor
// cove may open, and with them its API.
type Conns struct{ sem chan struct{} }

// NewConns returns a bound of n connections over the proxies that share
// it.
func NewConns(n int) *Conns { return &Conns{sem: make(chan struct{}, max(n, 1))} }

// DefaultConns is the bound for a server whose open files are limited to
// nofile: a quarter of them, so that the proxies' connections and their
// destinations' hold at most half.
func DefaultConns(nofile uint64) int {
	return int(max(min(nofile/4, 1<<20), maxConns))
}

// sharedListener accepts a connection when the server's bound has room
// for it, and turns it away at once, with a 503, when not: waiting would
// keep it from its sandbox's other connections no better.
type sharedListener struct {
	net.Listener
	conns   *Conns
	log     *slog.Logger
	observe func(Outcome)
}

func (l *sharedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		select {
		case l.conns.sem <- struct{}{}:
			return &sharedConn{Conn: c, conns: l.conns}, nil
		default:
		}
		l.log.Debug("egress connection turned away: the server's proxies serve their most connections", "max", cap(l.conns.sem))
		l.observe(Busy)
		c.SetWriteDeadline(time.Now().Add(time.Second))
		writeResponse(c, http.StatusServiceUnavailable, "the server's proxies serve as many connections as it allows: try again in a moment")
		c.Close()
	}
}

// sharedConn gives its place in the server's bound back when closed.
type sharedConn struct {
	net.Conn
	conns *Conns
	once  sync.Once
}

func (c *sharedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { <-c.conns.sem })
	return err
}

// CloseWrite half-closes the connection underneath, which a tunnel
// passes a half-close on to.
func (c *sharedConn) CloseWrite() error {
	if cw, ok := c.Conn.(closeWriter); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}

// Serve serves the proxy on ln, which accepts the sandbox's connections,
// until Close. network is the limit the policy came from, for messages.
func Serve(ln net.Listener, policy *Policy, network string, opts Options) *Proxy {
	return serve(ln, policy, network, opts, idleTimeout)
}

// serve is Serve with the time after which a tunnel in which nothing
// moves ends.
func serve(ln net.Listener, policy *Policy, network string, opts Options, idle time.Duration) *Proxy {
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	observe := opts.Observe
	if observe == nil {
		observe = func(Outcome) {}
	}
	p := &Proxy{policy: policy, network: network, log: log, observe: observe, idle: idle, tunnels: map[net.Conn]struct{}{}}
	p.dialer = net.Dialer{Timeout: dialTimeout, Control: p.control}
	p.tr = &http.Transport{
		Proxy:                  nil,
		DialContext:            p.dialUpstream,
		MaxIdleConns:           maxIdleConns,
		MaxIdleConnsPerHost:    4,
		IdleConnTimeout:        30 * time.Second,
		ResponseHeaderTimeout:  idleTimeout,
		MaxResponseHeaderBytes: maxHeaderBytes,
		// The response goes to the sandbox as the server sent it: the
		// proxy does not spend the host's CPU inflating it.
		DisableCompression: true,
	}
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 30 * time.Second, IdleTimeout: idleTimeout,
		MaxHeaderBytes: maxHeaderBytes,
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	if opts.Conns != nil {
		ln = &sharedListener{Listener: ln, conns: opts.Conns, log: log, observe: observe}
	}
	// At most maxConns connections from the sandbox are accepted at once;
	// more wait in the kernel's backlog, holding nothing of cove's.
	go p.srv.Serve(&sandboxListener{Listener: connlimit.Listener(ln, maxConns, 0), idle: idle})
	return p
}

// sandboxListener accepts the sandbox's connections as sandboxConns.
type sandboxListener struct {
	net.Listener
	idle time.Duration
}

func (l *sandboxListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &sandboxConn{Conn: c, idle: l.idle}, nil
}

// sandboxConn is a connection from the sandbox. A write to it ends when
// the sandbox has taken nothing of it for idle: a sandbox that stops
// reading a plain-HTTP response holds it, and the destination's
// connection, no longer than a tunnel. (http.Server's WriteTimeout would
// bound a whole response, however steadily it moved.)
type sandboxConn struct {
	net.Conn
	idle time.Duration
}

func (c *sandboxConn) Write(b []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(c.idle))
	return c.Conn.Write(b)
}

// CloseWrite half-closes the connection underneath, so that a tunnel
// passes on the end of what its destination sends while the sandbox
// still sends.
func (c *sandboxConn) CloseWrite() error {
	if cw, ok := c.Conn.(closeWriter); ok {
		return cw.CloseWrite()
	}
	return c.Close()
}

// closeWriter is a connection that can be half-closed, as TCP's can.
type closeWriter interface{ CloseWrite() error }

// dialUpstream is dial for the plain-HTTP transport, which sets no
// deadline on its connections.
func (p *Proxy) dialUpstream(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := p.dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &upstreamConn{Conn: c, idle: p.idle, moves: newActivity()}, nil
}

// upstreamConn is a connection to a plain-HTTP destination. A read ends
// when nothing has moved either way on it for idle (a destination that
// stops midway through a response), and a write when the destination has
// taken nothing of it for idle (one that stops reading a request's body):
// otherwise such a destination, which the sandbox may run itself, would
// hold the connection and the sandbox's for as long as the sandbox lives.
type upstreamConn struct {
	net.Conn
	idle  time.Duration
	moves *activity
}

func (c *upstreamConn) Read(b []byte) (int, error) {
	for {
		left := c.idle - c.moves.stillFor()
		if left <= 0 {
			return 0, os.ErrDeadlineExceeded
		}
		c.Conn.SetReadDeadline(time.Now().Add(left))
		n, err := c.Conn.Read(b)
		if n > 0 {
			c.moves.moved()
		}
		// At a timeout, the loop sees whether a write moved meanwhile (a
		// long upload to a destination that answers at its end).
		if n == 0 && err != nil && os.IsTimeout(err) {
			continue
		}
		return n, err
	}
}

func (c *upstreamConn) Write(b []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(c.idle))
	n, err := c.Conn.Write(b)
	if n > 0 {
		c.moves.moved()
	}
	return n, err
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
		return &refusal{msg: fmt.Sprintf("cannot check address %s", address)}
	}
	if ok, why := p.policy.allowAddr(ap.Addr()); !ok {
		return &refusal{msg: fmt.Sprintf("%s is %s", ap.Addr(), why), resolved: true}
	}
	return nil
}

// dial connects to addr (host:port) if the policy allows it.
func (p *Proxy) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, &refusal{msg: fmt.Sprintf("invalid destination %q", addr)}
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return nil, &refusal{msg: fmt.Sprintf("invalid port in %q", addr)}
	}
	checked, ok := p.policy.allowHost(host, port)
	if !ok && !isASCII(host) {
		return nil, &refusal{msg: fmt.Sprintf("%q is not an ASCII host name: give an international name in its xn-- (IDNA) form, as the network limit does", host)}
	}
	if !ok {
		if a, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
			// An address no network limit can allow: suggesting one
			// would only lead to a second refusal.
			if allowed, why := p.policy.allowAddr(a); !allowed {
				return nil, &refusal{msg: fmt.Sprintf("%s is %s", a, why), resolved: true}
			}
		}
		return nil, &refusal{msg: fmt.Sprintf("%s %s (%s): create the sandbox with it, e.g. --network %s", addr, notInLimit, quoteNetwork(p.network), suggest(host, port))}
	}
	// The name dialled is the one the rule matched.
	conn, err := p.dialer.DialContext(ctx, "tcp", net.JoinHostPort(checked, strconv.Itoa(port)))
	var ref *refusal
	if err != nil && errors.As(err, &ref) && ref.resolved {
		if _, perr := netip.ParseAddr(strings.Trim(checked, "[]")); perr != nil {
			// A name that resolved to an address the sandbox may not
			// reach: which address is not said, or a sandbox allowed
			// every host could map the names and addresses of the
			// private network around the host.
			return nil, &refusal{msg: checked + " resolves to an address " + neverReached + ": private, reserved or the host's own (the operator can allow private ones with network_private)", resolved: true}
		}
	}
	return conn, err
}

// quoteNetwork is the network limit as a refusal quotes it: a long one
// is cut short, since the message travels in the status line.
func quoteNetwork(network string) string {
	if len(network) <= messageNetwork {
		return network
	}
	cut := strings.LastIndexByte(network[:messageNetwork], ',')
	if cut < 0 {
		cut = messageNetwork
	}
	return network[:cut] + ",..."
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
		p.observe(BadRequest)
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
		// What a sandbox's requests go through is the server's debug
		// log's, not its standard error.
		ErrorLog: p.srv.ErrorLog,
		ModifyResponse: func(*http.Response) error {
			p.observe(Allowed)
			return nil
		},
	}
	rp.ServeHTTP(&upgradeWriter{ResponseWriter: w, p: p}, r)
}

// upgradeWriter hands the connection that ReverseProxy takes over for a
// protocol switch (a WebSocket over http://) to the proxy as a tunnel's,
// which http.Server no longer knows of: Close ends it, and so does
// idleTimeout without traffic.
type upgradeWriter struct {
	http.ResponseWriter
	p *Proxy
}

func (u *upgradeWriter) Unwrap() http.ResponseWriter { return u.ResponseWriter }

func (u *upgradeWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(u.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	if !u.p.track(c) {
		return nil, nil, errors.New("the proxy has closed")
	}
	return &upgraded{Conn: c, p: u.p}, brw, nil
}

// upgraded is a connection taken over for a protocol switch.
type upgraded struct {
	net.Conn
	p *Proxy
}

// Read and Write each push the deadlines on: the connection ends when
// nothing has moved either way for idleTimeout, or when the sandbox has
// not read what came for it in that time.
func (c *upgraded) Read(b []byte) (int, error) {
	c.Conn.SetReadDeadline(time.Now().Add(c.p.idle))
	return c.Conn.Read(b)
}

func (c *upgraded) Write(b []byte) (int, error) {
	c.Conn.SetDeadline(time.Now().Add(c.p.idle))
	return c.Conn.Write(b)
}

func (c *upgraded) Close() error {
	c.p.untrack(c.Conn)
	return nil
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
	p.observe(Allowed)
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
	moves := newActivity()
	go func() { pipe(up, down, p.idle, moves); done <- struct{}{} }()
	go func() { pipe(down, up, p.idle, moves); done <- struct{}{} }()
	<-done
	<-done
}

// pipe copies src to dst, then half-closes dst (closes it, if it cannot
// be half-closed): the other way goes on until its own end, as a
// protocol that sends its last message and then reads the answer (or
// the other way round) needs. A read ends it when
// nothing has moved either way through the tunnel for idle (moves is
// shared by its two ways): one way may be quiet for as long as the other
// moves, as in a long download or upload. A write ends it when it waits
// idle: a destination that reads nothing holds a tunnel no longer than
// one that sends nothing.
func pipe(dst, src net.Conn, idle time.Duration, moves *activity) {
	buf := make([]byte, 32<<10)
	for {
		left := idle - moves.stillFor()
		if left <= 0 {
			break
		}
		src.SetReadDeadline(time.Now().Add(left))
		n, err := src.Read(buf)
		if n > 0 {
			moves.moved()
			dst.SetWriteDeadline(time.Now().Add(idle))
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
			moves.moved()
		}
		// At a timeout, the loop sees whether the other way moved.
		if err != nil && !os.IsTimeout(err) {
			break
		}
	}
	if cw, ok := dst.(closeWriter); ok {
		cw.CloseWrite()
	} else {
		dst.Close()
	}
}

// activity is when something last moved through a tunnel, on the
// monotonic clock.
type activity struct {
	start time.Time
	last  atomic.Int64 // nanoseconds from start
}

func newActivity() *activity { return &activity{start: time.Now()} }

func (a *activity) moved() { a.last.Store(int64(time.Since(a.start))) }

// stillFor is how long nothing has moved.
func (a *activity) stillFor() time.Duration {
	return time.Since(a.start) - time.Duration(a.last.Load())
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
	var dns *net.DNSError
	status := http.StatusBadGateway
	msg := err.Error()
	switch {
	case errors.As(err, &ref):
		status, msg = http.StatusForbidden, ref.msg
	case errors.Is(err, context.Canceled):
		return
	case errors.As(err, &dns):
		// Without the host's resolver, which the error names.
		msg = fmt.Sprintf("cannot resolve %s: %s", dns.Name, dns.Err)
	}
	p.log.Debug("egress refused or failed", "method", r.Method, "host", r.Host, "status", status, "err", err)
	if status == http.StatusForbidden {
		p.observe(Refused)
	} else {
		p.observe(Failed)
	}
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(status)
		io.WriteString(w, "cove: "+msg+"\n")
		return
	}
	defer conn.Close()
	writeResponse(buf, status, msg)
	buf.Flush()
}

// writeResponse writes a whole response that says msg, and that the
// connection closes after it, to a connection taken from http.Server
// (or never given to it). The reason phrase
// carries the message too: clients such as pip and Python's http.client
// show it ("Tunnel connection failed: 403 ...") and not the body.
func writeResponse(w io.Writer, status int, msg string) {
	body := "cove: " + msg + "\n"
	reason := strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, "cove: "+msg)
	fmt.Fprintf(w, "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", status, reason, len(body), body)
}
