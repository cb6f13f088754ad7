package webui

import (
	"net"
	"net/netip"
	"net/url"
	"strings"

	"github.com/cove-sandbox/cove"
)

// hostPolicy decides which Host headers the server answers. A page of a
// DNS-rebinding attacker reaches the server under the attacker's own
// name, so a server that answers only its own names is out of its reach
// even on localhost.
type hostPolicy struct {
	// port is the listen port; loopback names and, when listening on
	// every address, any IP literal are allowed with it.
	port string
	// listenHost is the listen address's host when it is not a wildcard.
	listenHost string
	wildcard   bool
	// public are the Host values of the public URL (with and without its
	// default port).
	public []string
}

// newHostPolicy returns the policy of a server listening on listenAddr
// and reached at publicURL (may be empty). An empty listenAddr allows
// every Host (no policy). Errors: invalid.
func newHostPolicy(listenAddr, publicURL string) (hostPolicy, error) {
	var p hostPolicy
	if listenAddr != "" {
		host, port, err := net.SplitHostPort(listenAddr)
		if err != nil {
			return p, cove.Errorf(cove.CodeInvalid, "invalid listen address %q: %v", listenAddr, err)
		}
		p.port = port
		if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
			p.wildcard = true
		} else {
			p.listenHost = strings.ToLower(host)
		}
	}
	if publicURL != "" {
		u, err := url.Parse(publicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return p, cove.Errorf(cove.CodeInvalid, "invalid public URL %q: use http(s)://HOST[:PORT]", publicURL)
		}
		h := strings.ToLower(u.Host)
		p.public = append(p.public, h)
		if u.Port() == "" {
			p.public = append(p.public, h+map[string]string{"http": ":80", "https": ":443"}[u.Scheme])
		} else if (u.Scheme == "http" && u.Port() == "80") || (u.Scheme == "https" && u.Port() == "443") {
			p.public = append(p.public, strings.ToLower(u.Hostname()))
		}
	}
	return p, nil
}

// allowed says whether the server answers for hostport, a Host header.
func (p hostPolicy) allowed(hostport string) bool {
	if p.port == "" && len(p.public) == 0 {
		return true
	}
	hostport = strings.ToLower(hostport)
	for _, h := range p.public {
		if hostport == h {
			return true
		}
	}
	if p.port == "" {
		return false
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil || port != p.port {
		return false
	}
	switch host {
	case "localhost", "127.0.0.1", "::1":
		return true
	}
	if p.listenHost != "" {
		return host == p.listenHost
	}
	// Listening on every address: the machine's addresses are allowed,
	// and any IP literal is as good, since a rebinding page always
	// names a domain.
	_, err = netip.ParseAddr(host)
	return err == nil
}
