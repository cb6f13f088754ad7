package cove

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// NetworkNone is the network limit of a sandbox that reaches nothing but
// its own loopback.
const NetworkNone = "none"

// NetworkRule is one entry of a network limit: a host name, a wildcard
// for every subdomain of one ("*.example.com"), an IP address, or "*" for
// any host, each with a port, or with none for ports 80 and 443.
type NetworkRule struct {
	// Host is the lower-case name or address; "*" matches any host, and
	// a leading "*." any subdomain of the rest.
	Host string
	// Port is the one port allowed, or 0 for 80 and 443.
	Port int
}

// String returns r as ParseNetwork reads it.
func (r NetworkRule) String() string {
	if r.Port == 0 {
		return r.Host
	}
	return net.JoinHostPort(r.Host, strconv.Itoa(r.Port))
}

// Allows reports whether r lets a sandbox reach host (lower-case, without
// brackets) on port.
func (r NetworkRule) Allows(host string, port int) bool {
	if r.Port == 0 && port != 80 && port != 443 || r.Port != 0 && port != r.Port {
		return false
	}
	switch {
	case r.Host == "*":
		return true
	case strings.HasPrefix(r.Host, "*."):
		return strings.HasSuffix(host, r.Host[1:])
	}
	return host == r.Host
}

// HasNetwork reports whether l's network limit names any host, which the
// sandbox then reaches through cove's proxy; without one ("none", empty,
// or a limit that does not parse), it has its loopback only.
func (l Limits) HasNetwork() bool {
	rules, _ := ParseNetwork(l.Network)
	return len(rules) > 0
}

// Bounds of a network limit, which is kept with the sandbox, shown with
// it, read again for each of its programs and searched for each of its
// connections.
const (
	// MaxNetworkRules is how many entries a network limit may have.
	MaxNetworkRules = 256
	// MaxNetworkLen is how long a network limit may be, in bytes.
	MaxNetworkLen = 16 << 10
)

// ParseNetwork reads a network limit: "none", or hosts separated by commas
// or spaces (see NetworkRule). Empty is no rule, as "none" is.
func ParseNetwork(s string) ([]NetworkRule, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.EqualFold(s, NetworkNone) {
		return nil, nil
	}
	const hint = "name fewer hosts, using wildcards such as *.example.com for the names of one domain, or * for any host"
	if len(s) > MaxNetworkLen {
		return nil, Errorf(CodeInvalid, "network: the limit is %d bytes long, over the %d allowed: %s", len(s), MaxNetworkLen, hint)
	}
	fields := strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' })
	if len(fields) > MaxNetworkRules {
		return nil, Errorf(CodeInvalid, "network: %d entries, over the %d allowed: %s", len(fields), MaxNetworkRules, hint)
	}
	rules := make([]NetworkRule, 0, len(fields))
	for _, f := range fields {
		r, err := parseNetworkRule(strings.ToLower(f))
		if err != nil {
			return nil, err
		}
		rules = append(rules, r)
	}
	return rules, nil
}

// NormalizeNetwork returns the network limit s as cove keeps it: "" for
// no rule given, "none", or the rules in lower case joined by commas.
func NormalizeNetwork(s string) (string, error) {
	if strings.TrimSpace(s) == "" {
		return "", nil
	}
	rules, err := ParseNetwork(s)
	if err != nil {
		return "", err
	}
	if rules == nil {
		return NetworkNone, nil
	}
	parts := make([]string, len(rules))
	for i, r := range rules {
		parts[i] = r.String()
	}
	return strings.Join(parts, ","), nil
}

func parseNetworkRule(f string) (NetworkRule, error) {
	bad := func(why string) (NetworkRule, error) {
		return NetworkRule{}, Errorf(CodeInvalid, "network %q: %s; give host names such as pypi.org, *.pythonhosted.org or example.com:8080, separated by commas, or \"none\"", Excerpt(f, 77), why)
	}
	if f == NetworkNone {
		return bad(`"none" cannot be combined with hosts`)
	}
	if strings.Contains(f, "://") || strings.ContainsAny(f, "/?#@") {
		return bad("give a host, not a URL")
	}
	host, port := f, 0
	if h, p, err := net.SplitHostPort(f); err == nil {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return bad("the port must be a number from 1 to 65535")
		}
		host, port = h, n
	} else if strings.HasPrefix(f, "[") && strings.HasSuffix(f, "]") {
		host = f[1 : len(f)-1]
	}
	if host == "*" {
		return NetworkRule{Host: host, Port: port}, nil
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Zone() != "" {
			// A zone names an interface of the host, and could carry any
			// character into the limit as it is kept and shown.
			return bad("an address with a zone (%eth0) names an interface of the host: give the address alone")
		}
		return NetworkRule{Host: a.Unmap().String(), Port: port}, nil
	}
	name := strings.TrimPrefix(host, "*.")
	if len(name) > 253 {
		return bad("a host name is at most 253 characters long")
	}
	if name == "" || strings.Contains(name, "*") {
		return bad("a wildcard may only start a name, as in *.example.com")
	}
	for _, label := range strings.Split(strings.TrimSuffix(name, "."), ".") {
		if label == "" || len(label) > 63 || strings.Trim(label, "abcdefghijklmnopqrstuvwxyz0123456789-_") != "" || label[0] == '-' || label[len(label)-1] == '-' {
			return bad("not a valid host name")
		}
	}
	return NetworkRule{Host: strings.TrimSuffix(host, "."), Port: port}, nil
}

// noHostSigns are what programs print when a name lookup or a connection
// fails for want of a network: Python, pip, curl, Node and others.
var noHostSigns = []string{
	"Temporary failure in name resolution", "Name or service not known", "Network is unreachable",
	"Could not resolve host", "getaddrinfo ENOTFOUND", "getaddrinfo EAI_AGAIN", "NameResolutionError",
	"Failed to establish a new connection", "nodename nor servname",
}

// ReachedNoHost reports whether a program's output shows that it tried to
// reach a host and could not resolve or connect to it, as a program in a
// sandbox without a network limit cannot: front ends then say how to give
// it one.
func ReachedNoHost(output string) bool {
	for _, sign := range noHostSigns {
		if strings.Contains(output, sign) {
			return true
		}
	}
	return false
}
