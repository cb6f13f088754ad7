package egress

import (
	"bufio"
	"compress/gzip"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cove-sandbox/cove"
)

// TestCheckAddresses checks that a network limit naming an address no
// sandbox may reach is refused when the sandbox is made, and one the
// operator allows, or a public one, is not.
func TestCheckAddresses(t *testing.T) {
	private := []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")}
	for _, c := range []struct {
		network string
		refused string
	}{
		{"pypi.org 1.1.1.1 [2606:4700::1111]:443", ""},
		{"10.9.1.2:8080", ""},
		{"10.1.2.3", "network limit: 10.1.2.3 is a private or reserved address, which sandboxes may not reach (the operator can allow it with network_private)"},
		{"pypi.org 127.0.0.1:8000", "network limit: 127.0.0.1 is a private or reserved address"},
		{"169.254.169.254", "network limit: 169.254.169.254 is a private or reserved address"},
		{"::1", "network limit: ::1 is a private or reserved address"},
	} {
		p, err := NewPolicy(c.network, private)
		if err != nil {
			t.Fatal(err)
		}
		p.hostAddrs = func() ([]netip.Addr, error) { return nil, nil }
		err = p.CheckAddresses()
		switch {
		case c.refused == "" && err != nil:
			t.Errorf("%q: %v", c.network, err)
		case c.refused != "" && (cove.ErrorCode(err) != cove.CodeInvalid || !strings.HasPrefix(cove.ErrorMessage(err), c.refused)):
			t.Errorf("%q: %v, want invalid %q", c.network, err, c.refused)
		}
	}
}

func TestPolicyHosts(t *testing.T) {
	p, err := NewPolicy("pypi.org, *.pythonhosted.org example.com:8080 10.1.2.3", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		host string
		port int
		want bool
	}{
		{"pypi.org", 443, true},
		{"PyPI.org.", 80, true},
		{"pypi.org", 8443, false},
		{"evil-pypi.org", 443, false},
		{"files.pythonhosted.org", 443, true},
		{"pythonhosted.org", 443, false},
		{"example.com", 8080, true},
		{"example.com", 443, false},
		{"10.1.2.3", 443, true},
		{"::ffff:10.1.2.3", 443, true},
		{"github.com", 443, false},
	} {
		if _, got := p.allowHost(c.host, c.port); got != c.want {
			t.Errorf("allowHost(%q, %d) = %v, want %v", c.host, c.port, got, c.want)
		}
	}
	if h, ok := p.allowHost("PyPI.org.", 443); !ok || h != "pypi.org" {
		t.Errorf("allowHost(PyPI.org.) = %q %v, want the name as the rule matched it", h, ok)
	}
	// strings.ToLower folds the Kelvin sign into "k"; the resolver would
	// look up the name as given, which no rule names.
	k, _ := NewPolicy("*.kernel.org", nil)
	if h, ok := k.allowHost("cdn.\u212Aernel.org", 443); ok {
		t.Errorf("a name with a Kelvin sign passed as %q", h)
	}
	if none, _ := NewPolicy("none", nil); none.Enabled() {
		t.Error(`"none" enables the proxy`)
	}
}

func TestPolicyAddresses(t *testing.T) {
	p, _ := NewPolicy("*", []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")})
	// None of these is the host's: this host's own address is on
	// TEST-NET-1, which the ranges alone must refuse.
	p.hostAddrs = func() ([]netip.Addr, error) { return nil, nil }
	for _, c := range []struct {
		addr string
		want bool
	}{
		{"93.184.215.14", true},
		{"2606:2800:21f:cb07:6820:80da:af6b:8b2c", true},
		{"127.0.0.1", false},
		{"::1", false},
		{"::ffff:127.0.0.1", false},
		{"10.0.0.1", false},
		{"10.9.3.4", true},
		{"172.16.5.5", false},
		{"192.168.1.1", false},
		{"169.254.169.254", false},
		{"fe80::1", false},
		{"fd00::1", false},
		{"100.64.0.1", false},
		{"0.0.0.0", false},
		{"224.0.0.1", false},
		{"fe80::1%eth0", false},
		// Documentation, benchmarking and relay ranges, which a host
		// may nevertheless use (this one's is on TEST-NET-1).
		{"192.0.2.2", false},
		{"198.51.100.7", false},
		{"203.0.113.9", false},
		{"192.88.99.1", false},
		{"2001:db8::1", false},
		{"3fff::1", false},
		// Deprecated IPv6 forms of IPv4 addresses.
		{"::127.0.0.1", false},
		{"::10.0.0.1", false},
		{"::ffff:0:127.0.0.1", false},
		{"fec0::1", false},
		{"2001::1", false},
		// NAT64 and 6to4 lead to the IPv4 address they carry.
		{"64:ff9b::10.0.0.1", false},
		{"64:ff9b::127.0.0.1", false},
		{"64:ff9b::169.254.169.254", false},
		{"64:ff9b::93.184.215.14", true},
		{"64:ff9b::10.9.1.1", true},
		{"2002:c0a8:0101::1", false},
		{"2002:7f00:0001::1", false},
		{"2002:5db8:d70e::1", true},
		// Azure's WireServer (its VM agent's goal state, extension
		// settings, and health probes) at a public address that every
		// Azure VM reaches, for root only by the agent's firewall rule;
		// the proxy dials as cove's user.
		{"168.63.129.16", false},
		{"64:ff9b::a83f:8110", false},
		{"168.63.129.17", true},
	} {
		if got, _ := p.allowAddr(netip.MustParseAddr(c.addr)); got != c.want {
			t.Errorf("allowAddr(%s) = %v, want %v", c.addr, got, c.want)
		}
	}
}

// TestPolicyRefusesTheHostsOwnAddresses: a service of the host that
// listens on all its addresses is reached through a public one as well.
func TestPolicyRefusesTheHostsOwnAddresses(t *testing.T) {
	p, _ := NewPolicy("*", []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")})
	own := []netip.Addr{netip.MustParseAddr("93.184.215.99"), netip.MustParseAddr("2606:2800:21f::7"), netip.MustParseAddr("10.9.0.1")}
	p.hostAddrs = func() ([]netip.Addr, error) { return own, nil }
	for _, c := range []struct {
		addr string
		want bool
	}{
		{"93.184.215.99", false},
		{"::ffff:93.184.215.99", false},
		{"64:ff9b::93.184.215.99", false},
		{"2606:2800:21f::7", false},
		{"93.184.215.14", true},
		// The operator's private prefix is the network around the
		// host, not the host.
		{"10.9.0.1", false},
		{"10.9.0.2", true},
	} {
		got, why := p.allowAddr(netip.MustParseAddr(c.addr))
		if got != c.want {
			t.Errorf("allowAddr(%s) = %v, want %v", c.addr, got, c.want)
		}
		if !got && !strings.Contains(why, "address of the host itself") {
			t.Errorf("allowAddr(%s) says %q", c.addr, why)
		}
	}
	// A refusal says how the operator could allow the address, and
	// only that: for a host address in a listed prefix, to list it alone.
	pr := &Proxy{policy: p}
	for addr, want := range map[string]string{
		"10.9.0.1:80":         "10.9.0.1 is an address of the host itself, which network_private lists only as part of 10.9.0.0/16: list it alone to allow it",
		"93.184.215.99:443":   "93.184.215.99 is an address of the host itself, which sandboxes may not reach (the operator can allow it with network_private)",
		"10.8.0.1:80":         "10.8.0.1 is a private or reserved address, which sandboxes may not reach (the operator can allow it with network_private)",
		"[64:ff9b::a08:1]:80": "64:ff9b::a08:1 is an IPv6 form of 10.8.0.1, a private or reserved address, which sandboxes may not reach (the operator can allow it with network_private)",
	} {
		if err := pr.control("tcp", addr, nil); err == nil || err.Error() != want {
			t.Errorf("control(%s) = %v, want %q", addr, err, want)
		}
	}
	// Listed alone, a host address is allowed; loopback, in any prefix.
	own = append(own, netip.MustParseAddr("127.0.0.1"))
	p, _ = NewPolicy("*", []netip.Prefix{netip.MustParsePrefix("10.9.0.1/32"), netip.MustParsePrefix("127.0.0.0/8")})
	p.hostAddrs = func() ([]netip.Addr, error) { return own, nil }
	for _, a := range []string{"10.9.0.1", "127.0.0.1"} {
		if ok, why := p.allowAddr(netip.MustParseAddr(a)); !ok {
			t.Errorf("allowAddr(%s), which the operator lists: refused (%s)", a, why)
		}
	}
	p.hostAddrs = func() ([]netip.Addr, error) { return nil, errors.New("netlink: no") }
	if ok, why := p.allowAddr(netip.MustParseAddr("93.184.215.14")); ok || !strings.Contains(why, "netlink: no") {
		t.Errorf("with the host's addresses unknown: %v %q, want a refusal", ok, why)
	}
	// The real interfaces: none of this machine's addresses is allowed.
	p, _ = NewPolicy("*", nil)
	addrs, err := interfaceAddrs()
	if err != nil || len(addrs) == 0 {
		t.Fatalf("reading the host's addresses: %v %v", addrs, err)
	}
	for _, a := range addrs {
		if ok, _ := p.allowAddr(a); ok {
			t.Errorf("the host's own address %s is allowed", a)
		}
	}
}

// startProxy serves a proxy for network (see serveProxy) and returns a
// client that uses it.
func startProxy(t *testing.T, network string, private ...netip.Prefix) *http.Client {
	t.Helper()
	_, addr := serveProxy(t, network, private...)
	u := &url.URL{Scheme: "http", Host: addr}
	return &http.Client{Transport: &http.Transport{
		Proxy:           http.ProxyURL(u),
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}}
}

func get(t *testing.T, c *http.Client, u string) (int, string) {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		// A refused CONNECT surfaces as the client's error, with the
		// proxy's status in it.
		return -1, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestProxyServesAllowedHosts(t *testing.T) {
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "plain "+r.URL.Path)
	}))
	defer plain.Close()
	secure := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "secure "+r.URL.Path)
	}))
	defer secure.Close()
	loop := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	pu, su := plain.Listener.Addr().String(), secure.Listener.Addr().String()
	c := startProxy(t, pu+","+su, loop...)

	if code, body := get(t, c, "http://"+pu+"/a"); code != 200 || body != "plain /a" {
		t.Errorf("plain HTTP through the proxy: %d %q", code, body)
	}
	if code, body := get(t, c, "https://"+su+"/b"); code != 200 || body != "secure /b" {
		t.Errorf("HTTPS through the proxy: %d %q", code, body)
	}
}

func TestProxyRefuses(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "reached")
	}))
	defer up.Close()
	addr := up.Listener.Addr().String()
	_, port, _ := net.SplitHostPort(addr)

	t.Run("host not in the limit", func(t *testing.T) {
		c := startProxy(t, "pypi.org", netip.MustParsePrefix("127.0.0.0/8"))
		code, body := get(t, c, "http://"+addr+"/")
		if code != http.StatusForbidden || !strings.Contains(body, "is not in this sandbox's network limit (pypi.org)") || !strings.Contains(body, "--network "+addr) {
			t.Errorf("got %d %q", code, body)
		}
		// A refused tunnel's reason phrase says why: clients show it.
		if code, msg := get(t, c, "https://"+addr+"/"); code != -1 || !strings.Contains(msg, "cove: "+addr+" is not in this sandbox's network limit") {
			t.Errorf("CONNECT: got %d %q", code, msg)
		}
	})
	t.Run("private address not in the limit", func(t *testing.T) {
		// No network limit could allow it: the refusal says so rather
		// than suggest one that would be refused in turn.
		c := startProxy(t, "pypi.org")
		code, body := get(t, c, "http://10.0.0.1/")
		if code != http.StatusForbidden || !strings.Contains(body, "10.0.0.1 is a private or reserved address") || strings.Contains(body, "--network") {
			t.Errorf("got %d %q", code, body)
		}
	})
	t.Run("loopback address the operator did not allow", func(t *testing.T) {
		c := startProxy(t, addr)
		code, body := get(t, c, "http://"+addr+"/")
		if code != http.StatusForbidden || !strings.Contains(body, "127.0.0.1 is a private or reserved address") {
			t.Errorf("got %d %q", code, body)
		}
	})
	t.Run("a name that resolves to loopback", func(t *testing.T) {
		// The refusal says why, but not which address the name has: a
		// sandbox allowed every host could otherwise map the private
		// network's names and addresses.
		c := startProxy(t, "localhost:"+port)
		code, body := get(t, c, "http://localhost:"+port+"/")
		if code != http.StatusForbidden || !strings.Contains(body, "localhost resolves to an address which sandboxes may not reach: private, reserved") || strings.Contains(body, "127.0.0.1") || strings.Contains(body, "::1") {
			t.Errorf("got %d %q", code, body)
		}
		if code, msg := get(t, c, "https://localhost:"+port+"/"); code != -1 || !strings.Contains(msg, "localhost resolves to an address") || strings.Contains(msg, "127.0.0.1") {
			t.Errorf("CONNECT: got %d %q", code, msg)
		}
	})
	t.Run("not a proxy request", func(t *testing.T) {
		policy, _ := NewPolicy("*", nil)
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		p := Serve(ln, policy, "*", Options{})
		defer p.Close()
		code, body := get(t, http.DefaultClient, "http://"+ln.Addr().String()+"/")
		if code != http.StatusBadRequest || !strings.Contains(body, "this is an HTTP proxy") {
			t.Errorf("got %d %q", code, body)
		}
	})
}

func TestCloseEndsTunnels(t *testing.T) {
	// An upstream that never answers holds the tunnel open.
	up := sink(t)
	p, proxy := serveProxy(t, up.Addr().String(), loopback)
	c := send(t, proxy, "CONNECT "+up.Addr().String()+" HTTP/1.1\r\nHost: "+up.Addr().String()+"\r\n\r\n")
	buf := make([]byte, 64)
	n, _ := c.Read(buf)
	if !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 200") {
		t.Fatalf("CONNECT answered %q", buf[:n])
	}
	p.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(buf); err == nil || os.IsTimeout(err) {
		t.Fatalf("the tunnel is still open after Close: read gave %v", err)
	}
}

// TestConnectionsAreBounded holds maxConns tunnels open: the next request
// waits, holding nothing of the proxy's, until one of them closes.
func TestConnectionsAreBounded(t *testing.T) {
	up := sink(t)
	_, proxy := serveProxy(t, up.Addr().String(), loopback)
	connect := func() (net.Conn, error) {
		c, err := net.Dial("tcp", proxy)
		if err != nil {
			return nil, err
		}
		io.WriteString(c, "CONNECT "+up.Addr().String()+" HTTP/1.1\r\nHost: x\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		buf := make([]byte, 64)
		n, err := c.Read(buf)
		if err != nil {
			return c, err
		}
		if !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 200") {
			return c, fmt.Errorf("answered %q", buf[:n])
		}
		return c, nil
	}
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for i := 0; i < maxConns; i++ {
		c, err := connect()
		if err != nil {
			t.Fatalf("tunnel %d: %v", i+1, err)
		}
		held = append(held, c)
	}
	extra, err := connect()
	if err == nil {
		t.Fatalf("tunnel %d was served while %d were open", maxConns+1, maxConns)
	}
	defer extra.Close()
	held[0].Close()
	extra.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 64)
	if n, err := extra.Read(buf); err != nil || !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 200") {
		t.Fatalf("the waiting tunnel was not served once another closed: %q %v", buf[:n], err)
	}
}

// serveProxy serves a proxy for network on the host's loopback, standing
// in for the sandbox's, until the test ends, and returns it and its
// address.
func serveProxy(t *testing.T, network string, private ...netip.Prefix) (*Proxy, string) {
	t.Helper()
	return serveProxyIdle(t, network, idleTimeout, private...)
}

// serveProxyIdle is serveProxy with idle as the time after which a
// connection in which nothing moves ends.
func serveProxyIdle(t *testing.T, network string, idle time.Duration, private ...netip.Prefix) (*Proxy, string) {
	t.Helper()
	return serveProxyWith(t, network, Options{}, idle, private...)
}

// serveProxyWith is serveProxyIdle with opts.
func serveProxyWith(t *testing.T, network string, opts Options, idle time.Duration, private ...netip.Prefix) (*Proxy, string) {
	t.Helper()
	policy, err := NewPolicy(network, private)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := serve(ln, policy, network, opts, idle)
	t.Cleanup(func() { p.Close() })
	return p, ln.Addr().String()
}

var loopback = netip.MustParsePrefix("127.0.0.0/8")

// TestHeadersAreBounded: the proxy holds a request's header, and a
// response's, in cove's memory: 64 connections of a sandbox each sending
// a megabyte of header held over 100 MB of it.
func TestHeadersAreBounded(t *testing.T) {
	big := strings.Repeat("a", 100<<10)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/big" {
			w.Header().Set("X-Big", big)
		}
		io.WriteString(w, "ok")
	}))
	defer up.Close()
	addr := up.Listener.Addr().String()
	c := startProxy(t, addr, loopback)

	req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
	req.Header.Set("X-Big", big)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("a request with a 100 KiB header: %d, want 431", resp.StatusCode)
	}
	if code, body := get(t, c, "http://"+addr+"/big"); code != http.StatusBadGateway {
		t.Errorf("a response with a 100 KiB header: %d %.80q, want 502", code, body)
	}
	if code, body := get(t, c, "http://"+addr+"/"); code != 200 || body != "ok" {
		t.Errorf("a small request: %d %q", code, body)
	}
}

// TestIdleConnectionsAreBounded: plain requests to many hosts (one
// sandbox allowed *.example.com can name any number) leave at most
// maxIdleConns connections open for reuse, not one per host.
func TestIdleConnectionsAreBounded(t *testing.T) {
	var open atomic.Int64
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }),
		ConnState: func(c net.Conn, s http.ConnState) {
			switch s {
			case http.StateNew:
				open.Add(1)
			case http.StateClosed, http.StateHijacked:
				open.Add(-1)
			}
		},
	}
	first, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(first.Addr().String())
	hosts := []string{first.Addr().String()}
	go srv.Serve(first)
	defer srv.Close()
	const n = 3 * maxIdleConns
	for i := 2; len(hosts) < n && i < 250; i++ {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.%d:%s", i, port))
		if err != nil {
			continue
		}
		go srv.Serve(ln)
		hosts = append(hosts, ln.Addr().String())
	}
	if len(hosts) < n {
		t.Skipf("could listen on only %d loopback addresses", len(hosts))
	}
	c := startProxy(t, "*:"+port, loopback)
	for _, h := range hosts {
		if code, body := get(t, c, "http://"+h+"/"); code != 200 {
			t.Fatalf("%s: %d %q", h, code, body)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for open.Load() > maxIdleConns && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if got := open.Load(); got > maxIdleConns {
		t.Errorf("%d connections to %d hosts stay open, want at most %d", got, len(hosts), maxIdleConns)
	}
}

// TestResponsesPassAsSent: the proxy asks for no compression the client
// did not ask for, and inflates nothing.
func TestResponsesPassAsSent(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept-Encoding") == "" {
			io.WriteString(w, "identity")
			return
		}
		w.Header().Set("Content-Encoding", "gzip")
		z := gzip.NewWriter(w)
		io.WriteString(z, strings.Repeat("0", 1<<20))
		z.Close()
	}))
	defer up.Close()
	addr := up.Listener.Addr().String()
	_, proxy := serveProxy(t, addr, loopback)
	c := send(t, proxy, "GET http://"+addr+"/ HTTP/1.1\r\nHost: "+addr+"\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if string(b) != "identity" {
		t.Errorf("got %d bytes (%s), want the identity body", len(b), resp.Header.Get("Content-Encoding"))
	}
}

// TestCloseEndsUpgradedConnections: a protocol switch (a WebSocket over
// http://) takes the connection away from http.Server, which Close then
// no longer ends; it is a tunnel, and ends with the proxy.
func TestCloseEndsUpgradedConnections(t *testing.T) {
	var mu sync.Mutex
	var backs []net.Conn
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			return
		}
		mu.Lock()
		backs = append(backs, c)
		mu.Unlock()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
		brw.Flush()
	}))
	defer up.Close()
	defer func() {
		mu.Lock()
		for _, c := range backs {
			c.Close()
		}
		mu.Unlock()
	}()
	addr := up.Listener.Addr().String()
	p, proxy := serveProxy(t, addr, loopback)
	c := send(t, proxy, "GET http://"+addr+"/ws HTTP/1.1\r\nHost: "+addr+"\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade: %v %v", resp, err)
	}
	p.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("the upgraded connection outlived the proxy: read gave %v, want EOF", err)
	}
}

// TestRefusalQuotesALongLimitShort: the message travels in the status
// line, which must not carry a network limit of thousands of entries.
func TestRefusalQuotesALongLimitShort(t *testing.T) {
	var hosts []string
	for i := 0; i < 200; i++ {
		hosts = append(hosts, fmt.Sprintf("host-%d.example.com", i))
	}
	c := startProxy(t, strings.Join(hosts, ","))
	code, body := get(t, c, "http://github.com/")
	if code != http.StatusForbidden || len(body) > 400 || !strings.Contains(body, "(host-0.example.com,") || !strings.Contains(body, ",...)") {
		t.Errorf("got %d %q (%d bytes)", code, body, len(body))
	}
}

// TestFailureNamesNoResolver: a name that does not resolve is reported
// as such, without the address of the host's DNS server.
func TestFailureNamesNoResolver(t *testing.T) {
	const name = "no-such-host.cove-test.invalid"
	c := startProxy(t, name)
	code, body := get(t, c, "http://"+name+"/")
	if code != http.StatusBadGateway || !strings.Contains(body, "cove: cannot resolve "+name+":") || strings.Contains(body, ":53") {
		t.Errorf("got %d %q", code, body)
	}
}

// TestConnsBoundAllProxies: many sandboxes, each within its own bound,
// together hold at most what the server's bound allows; one more
// connection is turned away at once, and served again once another ends.
func TestConnsBoundAllProxies(t *testing.T) {
	up := sink(t)
	conns := NewConns(3)
	var proxies []string
	for range 2 {
		policy, _ := NewPolicy(up.Addr().String(), []netip.Prefix{loopback})
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := Serve(ln, policy, "", Options{Conns: conns})
		defer p.Close()
		proxies = append(proxies, ln.Addr().String())
	}
	connect := func(proxy string) (net.Conn, string) {
		c, err := net.Dial("tcp", proxy)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, "CONNECT "+up.Addr().String()+" HTTP/1.1\r\nHost: x\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 200)
		n, _ := c.Read(buf)
		return c, string(buf[:n])
	}
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	for _, proxy := range []string{proxies[0], proxies[0], proxies[1]} {
		c, answer := connect(proxy)
		held = append(held, c)
		if !strings.HasPrefix(answer, "HTTP/1.1 200") {
			t.Fatalf("tunnel %d: %q", len(held), answer)
		}
	}
	c, answer := connect(proxies[1])
	c.Close()
	if !strings.HasPrefix(answer, "HTTP/1.1 503 cove: the server's proxies serve as many connections as it allows") {
		t.Fatalf("a fourth tunnel, over the server's bound of 3: %q", answer)
	}
	held[0].Close()
	held = held[1:]
	deadline := time.Now().Add(5 * time.Second)
	for {
		c, answer := connect(proxies[1])
		held = append(held, c)
		if strings.HasPrefix(answer, "HTTP/1.1 200") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no tunnel served once one ended: %q", answer)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestTunnelToAClientThatReadsNothingEnds: a sandbox that stops reading
// from a tunnel holds it, and its destination's connection, no longer
// than one that stops sending.
func TestTunnelToAClientThatReadsNothingEnds(t *testing.T) {
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	ended := make(chan error, 1)
	go func() {
		c, err := up.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		// The destination sends without end, and reads nothing.
		buf := make([]byte, 64<<10)
		for {
			c.SetWriteDeadline(time.Now().Add(20 * time.Second))
			if _, err := c.Write(buf); err != nil {
				ended <- err
				return
			}
		}
	}()
	_, proxy := serveProxyIdle(t, up.Addr().String(), 300*time.Millisecond, loopback)
	send(t, proxy, "CONNECT "+up.Addr().String()+" HTTP/1.1\r\nHost: x\r\n\r\n")
	// The client reads nothing more and sends nothing.
	awaitWritesEnd(t, ended, "the tunnel")
}

// awaitWritesEnd waits for a destination's endless writes to end (ended
// gets their error): before their own deadline, for what (the tunnel, the
// proxy) let go of the destination's connection.
func awaitWritesEnd(t *testing.T, ended <-chan error, what string) {
	t.Helper()
	select {
	case err := <-ended:
		if os.IsTimeout(err) {
			t.Fatalf("%s held the destination's connection: %v", what, err)
		}
	case <-time.After(25 * time.Second):
		t.Fatal("the destination's writes never ended")
	}
}

// TestNonASCIINameIsRefusedSaying: a tunnel to a name in other than
// ASCII characters says to give its xn-- form, which a limit can name.
func TestNonASCIINameIsRefusedSaying(t *testing.T) {
	_, proxy := serveProxy(t, "*")
	c := send(t, proxy, "CONNECT b\u00fccher.example:443 HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(b), "give an international name in its xn-- (IDNA) form") {
		t.Errorf("got %d %q", resp.StatusCode, b)
	}
}

// TestOutcomesAreObserved counts each request's outcome, as the server's
// metrics do.
func TestOutcomesAreObserved(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer up.Close()
	secure := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") }))
	defer secure.Close()
	// A port nothing listens on: allowed, but unreachable.
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := closed.Addr().String()
	closed.Close()
	addr, saddr := up.Listener.Addr().String(), secure.Listener.Addr().String()
	policy, _ := NewPolicy(addr+","+saddr+","+dead, []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	var mu sync.Mutex
	got := map[Outcome]int{}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	p := Serve(ln, policy, "", Options{Observe: func(o Outcome) { mu.Lock(); got[o]++; mu.Unlock() }})
	defer p.Close()
	c := &http.Client{Transport: &http.Transport{
		Proxy:           http.ProxyURL(&url.URL{Scheme: "http", Host: ln.Addr().String()}),
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
	}}
	get(t, c, "http://"+addr+"/")                                // allowed
	get(t, c, "https://"+saddr+"/")                              // allowed (a tunnel)
	get(t, c, "http://198.51.100.7/")                            // refused: not in the limit
	get(t, c, "https://example.org/")                            // refused
	get(t, c, "http://"+dead+"/")                                // failed
	get(t, http.DefaultClient, "http://"+ln.Addr().String()+"/") // bad request
	mu.Lock()
	defer mu.Unlock()
	want := map[Outcome]int{Allowed: 2, Refused: 2, Failed: 1, BadRequest: 1}
	for o, n := range want {
		if got[o] != n {
			t.Errorf("%s: %d, want %d (all: %v)", o, got[o], n, got)
		}
	}
}

// sink is a destination that accepts connections, reads them to their
// end and never answers, so that a tunnel to it stays open.
func sink(t *testing.T) net.Listener {
	t.Helper()
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { up.Close() })
	go func() {
		for {
			c, err := up.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	return up
}

// TestTunnelMovingOneWayStays: a tunnel ends when nothing has moved
// either way for its idle time, not when one way has been quiet that
// long: a long download sends nothing to the destination, and a long
// upload gets nothing back, for minutes.
func TestTunnelMovingOneWayStays(t *testing.T) {
	const idle = 300 * time.Millisecond
	for _, download := range []bool{true, false} {
		name := map[bool]string{true: "download", false: "upload"}[download]
		t.Run(name, func(t *testing.T) {
			up, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			defer up.Close()
			policy, err := NewPolicy(up.Addr().String(), []netip.Prefix{loopback})
			if err != nil {
				t.Fatal(err)
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			p := serve(ln, policy, "", Options{}, idle)
			defer p.Close()
			c := send(t, ln.Addr().String(), "CONNECT "+up.Addr().String()+" HTTP/1.1\r\nHost: x\r\n\r\n")
			br := bufio.NewReader(c)
			resp, err := http.ReadResponse(br, nil)
			if err != nil || resp.StatusCode != 200 {
				t.Fatalf("CONNECT: %v %v", resp, err)
			}
			dest, err := up.Accept()
			if err != nil {
				t.Fatal(err)
			}
			defer dest.Close()
			// One side sends a byte every idle/3 for 4 idle times; the other
			// reads them all and sends nothing.
			from, to := net.Conn(c), io.Reader(dest)
			quiet, quietConn := io.Reader(br), c // the way nothing is sent
			if download {
				from, to = dest, br
				quiet, quietConn = dest, dest
			}
			const n = 12
			go func() {
				for range n {
					if _, err := from.Write([]byte{'x'}); err != nil {
						return
					}
					time.Sleep(idle / 3)
				}
			}()
			got := make([]byte, n)
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			dest.SetReadDeadline(time.Now().Add(10 * time.Second))
			if k, err := io.ReadFull(to, got); err != nil {
				t.Fatalf("%d of %d bytes passed before the tunnel ended: %v", k, n, err)
			}
			// The quiet way is still open: reading it waits, and does
			// not find its end.
			quietConn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			if _, err := quiet.Read(make([]byte, 1)); !os.IsTimeout(err) {
				t.Fatalf("the way nothing was sent ended while the other moved: read gave %v", err)
			}
		})
	}
}

// TestRefusalIn finds the proxy's own refusals in what a program shows.
func TestRefusalIn(t *testing.T) {
	c := startProxy(t, "127.0.0.1:9")
	_, notIn := get(t, c, "http://1.1.1.1/")
	_, private := get(t, c, "http://127.0.0.1:9/")
	for _, tc := range []struct {
		out  string
		want Refusal
	}{
		{"urllib.error.HTTPError: HTTP Error 403: " + strings.TrimSpace(notIn), NotInLimit},
		{strings.TrimSpace(private), OperatorOnly},
		{"HTTP Error 403: Forbidden", NoRefusal},
	} {
		if got := RefusalIn(tc.out); got != tc.want {
			t.Errorf("RefusalIn(%q) = %d, want %d", tc.out, got, tc.want)
		}
	}
}

// send connects to the proxy at addr and writes request, raw; the
// connection closes when the test ends.
func send(t *testing.T, addr, request string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, request); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestPlainResponseToAClientThatReadsNothingEnds: a sandbox that stops
// reading a plain-HTTP response holds its destination's connection no
// longer than a tunnel's.
func TestPlainResponseToAClientThatReadsNothingEnds(t *testing.T) {
	ended := make(chan error, 1)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The destination sends without end.
		rc := http.NewResponseController(w)
		buf := make([]byte, 64<<10)
		for {
			rc.SetWriteDeadline(time.Now().Add(20 * time.Second))
			if _, err := w.Write(buf); err != nil {
				ended <- err
				return
			}
		}
	}))
	defer up.Close()
	host := up.Listener.Addr().String()
	_, proxy := serveProxyIdle(t, host, 300*time.Millisecond, loopback)
	send(t, proxy, "GET http://"+host+"/ HTTP/1.1\r\nHost: "+host+"\r\n\r\n")
	// The client reads nothing.
	awaitWritesEnd(t, ended, "the proxy")
}

// TestPlainResponseThatStopsEnds: a destination that stops midway
// through a response holds the sandbox's connection no longer than a
// tunnel's.
func TestPlainResponseThatStopsEnds(t *testing.T) {
	gone := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000")
		io.WriteString(w, "part")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		close(gone)
	}))
	defer up.Close()
	host := up.Listener.Addr().String()
	_, proxy := serveProxyIdle(t, host, 300*time.Millisecond, loopback)
	c := send(t, proxy, "GET http://"+host+"/ HTTP/1.1\r\nHost: "+host+"\r\n\r\n")
	// What the proxy had of the response may or may not have reached
	// the sandbox; the connection ends.
	c.SetReadDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.ReadAll(c); err != nil {
		t.Fatalf("the sandbox's connection did not end: %v", err)
	}
	select {
	case <-gone:
	case <-time.After(20 * time.Second):
		t.Fatal("the destination's connection was held")
	}
}

// TestPlainRequestThatMovesStays: a plain-HTTP upload and download that
// each take longer than the idle time, but never pause that long, pass.
func TestPlainRequestThatMovesStays(t *testing.T) {
	// Each way takes 1.5 s against an idle time of 1 s, and no pause
	// comes near it, even on a busy machine.
	const steps, pause, idle = 10, 150 * time.Millisecond, time.Second
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, err := io.ReadAll(r.Body)
		if err != nil {
			return
		}
		// The answer comes at the upload's end, and slowly.
		for i := 0; i < steps; i++ {
			fmt.Fprintf(w, "%d:%d ", i, len(got))
			w.(http.Flusher).Flush()
			time.Sleep(pause)
		}
	}))
	defer up.Close()
	host := up.Listener.Addr().String()
	_, addr := serveProxyIdle(t, host, idle, loopback)
	body, w := io.Pipe()
	go func() {
		for i := 0; i < steps; i++ {
			io.WriteString(w, "chunk")
			time.Sleep(pause)
		}
		w.Close()
	}()
	proxy := &url.URL{Scheme: "http", Host: addr}
	c := &http.Client{Transport: &http.Transport{Proxy: http.ProxyURL(proxy)}}
	resp, err := c.Post("http://"+host+"/", "text/plain", body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	want := ""
	for i := 0; i < steps; i++ {
		want += fmt.Sprintf("%d:%d ", i, steps*len("chunk"))
	}
	if err != nil || string(got) != want {
		t.Fatalf("got %q, %v; want %q", got, err, want)
	}
}

// tunnelEnds are the two ends of a tunnel through a proxy, for the tests
// of how one ends.
type tunnelEnds struct {
	p      *Proxy
	conns  *Conns // the shared bound, or nil
	client *net.TCPConn
	br     *bufio.Reader // reads client, from past the proxy's answer
	dest   *net.TCPConn
}

// openTunnel serves a proxy, with a shared bound or not, and opens a
// tunnel through it to a destination. Nothing in it idles out before the
// test does.
func openTunnel(t *testing.T, bound bool) tunnelEnds {
	t.Helper()
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	var e tunnelEnds
	var opts Options
	if bound {
		e.conns = NewConns(4)
		opts.Conns = e.conns
	}
	var proxy string
	e.p, proxy = serveProxyWith(t, up.Addr().String(), opts, idleTimeout, loopback)
	e.client = send(t, proxy, "CONNECT "+up.Addr().String()+" HTTP/1.1\r\nHost: x\r\n\r\n").(*net.TCPConn)
	e.br = bufio.NewReader(e.client)
	if resp, err := http.ReadResponse(e.br, nil); err != nil || resp.StatusCode != 200 {
		t.Fatalf("CONNECT: %v %v", resp, err)
	}
	dest, err := up.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dest.Close() })
	e.dest = dest.(*net.TCPConn)
	deadline := time.Now().Add(20 * time.Second)
	e.client.SetDeadline(deadline)
	e.dest.SetDeadline(deadline)
	return e
}

// awaitEnd waits for the proxy to let go of the tunnel's connections
// (and of their places in the shared bound): its copying has ended.
func (e tunnelEnds) awaitEnd(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		e.p.mu.Lock()
		open := len(e.p.tunnels)
		e.p.mu.Unlock()
		if open == 0 && (e.conns == nil || len(e.conns.sem) == 0) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the proxy still holds %d of the tunnel's connections", open)
		}
	}
}

// boundNames names the subtests of a proxy with a shared bound or not:
// each wraps the sandbox's connections in one more layer.
var boundNames = map[bool]string{false: "alone", true: "shared bound"}

// TestTunnelPassesHalfCloses: a side of a tunnel that has sent all it
// will and half-closes (a TCP FIN) still gets all the other side sends
// after, whichever side ends first; once both have, the tunnel ends.
func TestTunnelPassesHalfCloses(t *testing.T) {
	const n = 1 << 20 // more than the sockets' buffers hold
	sendAll := func(c *net.TCPConn) error {
		if _, err := c.Write(make([]byte, n)); err != nil {
			return fmt.Errorf("sending: %w", err)
		}
		return c.CloseWrite()
	}
	for _, bound := range []bool{false, true} {
		for _, destFirst := range []bool{true, false} {
			name := boundNames[bound] + "/" + map[bool]string{true: "destination", false: "sandbox"}[destFirst] + " ends first"
			t.Run(name, func(t *testing.T) {
				e := openTunnel(t, bound)
				first, firstR := e.client, io.Reader(e.br)
				second, secondR := e.dest, io.Reader(e.dest)
				if destFirst {
					first, firstR, second, secondR = second, secondR, first, firstR
				}
				sent := make(chan error, 2)
				go func() { sent <- sendAll(first) }()
				if got, err := io.Copy(io.Discard, secondR); got != n || err != nil {
					t.Fatalf("the side that ends second got %d of %d bytes: %v", got, n, err)
				}
				// It has seen the other's end, and answers.
				go func() { sent <- sendAll(second) }()
				got, err := io.Copy(io.Discard, firstR)
				for range 2 {
					if err := <-sent; err != nil {
						t.Error(err)
					}
				}
				if got != n || err != nil {
					t.Fatalf("the side that ended first got %d of %d bytes of the answer: %v", got, n, err)
				}
				e.awaitEnd(t)
			})
		}
	}
}

// TestTunnelEndsWhenASideCloses: a side that closes its connection
// (not half-closes it) ends the tunnel when the other side still sends,
// long before its idle time.
func TestTunnelEndsWhenASideCloses(t *testing.T) {
	for _, bound := range []bool{false, true} {
		for _, destCloses := range []bool{true, false} {
			name := boundNames[bound] + "/" + map[bool]string{true: "destination", false: "sandbox"}[destCloses] + " closes"
			t.Run(name, func(t *testing.T) {
				e := openTunnel(t, bound)
				closer, other, otherR := net.Conn(e.client), e.dest, io.Reader(e.dest)
				if destCloses {
					closer, other, otherR = e.dest, e.client, e.br
				}
				closer.Close()
				if got, err := io.Copy(io.Discard, otherR); got != 0 || err != nil {
					t.Fatalf("the other side read %d bytes, %v, want the end", got, err)
				}
				buf := make([]byte, 32<<10)
				for {
					_, err := other.Write(buf)
					if os.IsTimeout(err) {
						t.Fatal("the other side could still send")
					}
					if err != nil {
						break
					}
				}
				e.awaitEnd(t)
			})
		}
	}
}
