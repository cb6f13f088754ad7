package egress

import (
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"
)

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
		if got := p.allowHost(c.host, c.port); got != c.want {
			t.Errorf("allowHost(%q, %d) = %v, want %v", c.host, c.port, got, c.want)
		}
	}
	if none, _ := NewPolicy("none", nil); none.Enabled() {
		t.Error(`"none" enables the proxy`)
	}
}

func TestPolicyAddresses(t *testing.T) {
	p, _ := NewPolicy("*", []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")})
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
	} {
		if got := p.allowAddr(netip.MustParseAddr(c.addr)); got != c.want {
			t.Errorf("allowAddr(%s) = %v, want %v", c.addr, got, c.want)
		}
	}
}

// startProxy serves a proxy on the host's loopback, standing in for the
// sandbox's, and returns a client that uses it.
func startProxy(t *testing.T, network string, private ...netip.Prefix) *http.Client {
	t.Helper()
	policy, err := NewPolicy(network, private)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := Serve(ln, policy, network, slog.New(slog.DiscardHandler))
	t.Cleanup(func() { p.Close() })
	u := &url.URL{Scheme: "http", Host: ln.Addr().String()}
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
	t.Run("loopback address the operator did not allow", func(t *testing.T) {
		c := startProxy(t, addr)
		code, body := get(t, c, "http://"+addr+"/")
		if code != http.StatusForbidden || !strings.Contains(body, "127.0.0.1 is a private or reserved address") {
			t.Errorf("got %d %q", code, body)
		}
	})
	t.Run("a name that resolves to loopback", func(t *testing.T) {
		c := startProxy(t, "localhost:"+port)
		code, body := get(t, c, "http://localhost:"+port+"/")
		if code != http.StatusForbidden || !strings.Contains(body, "private or reserved address") {
			t.Errorf("got %d %q", code, body)
		}
	})
	t.Run("not a proxy request", func(t *testing.T) {
		policy, _ := NewPolicy("*", nil)
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		p := Serve(ln, policy, "*", slog.New(slog.DiscardHandler))
		defer p.Close()
		code, body := get(t, http.DefaultClient, "http://"+ln.Addr().String()+"/")
		if code != http.StatusBadRequest || !strings.Contains(body, "this is an HTTP proxy") {
			t.Errorf("got %d %q", code, body)
		}
	})
}

func TestCloseEndsTunnels(t *testing.T) {
	// An upstream that accepts and never answers holds the tunnel open.
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	go func() {
		for {
			c, err := up.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	policy, _ := NewPolicy(up.Addr().String(), []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	p := Serve(ln, policy, "", slog.New(slog.DiscardHandler))
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "CONNECT "+up.Addr().String()+" HTTP/1.1\r\nHost: "+up.Addr().String()+"\r\n\r\n")
	buf := make([]byte, 64)
	n, _ := c.Read(buf)
	if !strings.HasPrefix(string(buf[:n]), "HTTP/1.1 200") {
		t.Fatalf("CONNECT answered %q", buf[:n])
	}
	p.Close()
	if _, err := c.Read(buf); err == nil {
		t.Fatal("the tunnel is still open after Close")
	}
}

// TestConnectionsAreBounded holds maxConns tunnels open: the next request
// waits, holding nothing of the proxy's, until one of them closes.
func TestConnectionsAreBounded(t *testing.T) {
	up, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	go func() {
		for {
			c, err := up.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	policy, _ := NewPolicy(up.Addr().String(), []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")})
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	p := Serve(ln, policy, "", slog.New(slog.DiscardHandler))
	defer p.Close()
	connect := func() (net.Conn, error) {
		c, err := net.Dial("tcp", ln.Addr().String())
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
