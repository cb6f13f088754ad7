package cove

import (
	"fmt"
	"strings"
	"testing"
)

func TestNormalizeNetwork(t *testing.T) {
	for _, c := range []struct{ in, want, err string }{
		{"", "", ""},
		{" none ", "none", ""},
		{"NONE", "none", ""},
		{"PyPI.org, *.pythonhosted.org", "pypi.org,*.pythonhosted.org", ""},
		{"example.com:8080 10.0.0.1 [::1]:8443 *", "example.com:8080,10.0.0.1,[::1]:8443,*", ""},
		{"example.com.", "example.com", ""},
		{"https://pypi.org/simple", "", "give a host, not a URL"},
		{"pypi.org:0", "", "the port must be a number from 1 to 65535"},
		{"pypi.org:http", "", "the port must be a number"},
		{"a.*.org", "", "a wildcard may only start a name"},
		{"bad_host!", "", "not a valid host name"},
		{"-x.org", "", "not a valid host name"},
		{"none,pypi.org", "", `"none" cannot be combined with hosts`},
		{"fe80::1%eth0", "", "an address with a zone (%eth0) names an interface of the host"},
		{"fe80::1%\x1b[31m", "", "an address with a zone"},
		{strings.Repeat("abcdefghi.", 26) + "org", "", "a host name is at most 253 characters long"},
		// Quoted short without cutting a character in two.
		{strings.Repeat("é", 50), "", `network "` + strings.Repeat("é", 38) + `...": not a valid host name`},
	} {
		got, err := NormalizeNetwork(c.in)
		if c.err != "" {
			if ErrorCode(err) != CodeInvalid || !strings.Contains(ErrorMessage(err), c.err) {
				t.Errorf("NormalizeNetwork(%q): got %q, %v; want invalid %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("NormalizeNetwork(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

// TestNetworkIsBounded: a limit of thousands of hosts, or of a megabyte,
// would be kept, shown and read again for each program of its sandbox.
func TestNetworkIsBounded(t *testing.T) {
	hosts := func(n int) string {
		var b strings.Builder
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "h%d.example.com", i)
		}
		return b.String()
	}
	if rules, err := ParseNetwork(hosts(MaxNetworkRules)); err != nil || len(rules) != MaxNetworkRules {
		t.Fatalf("%d hosts: %d rules, %v", MaxNetworkRules, len(rules), err)
	}
	for _, c := range []struct{ in, want string }{
		{hosts(MaxNetworkRules + 1), "257 entries, over the 256 allowed: name fewer hosts"},
		{hosts(10000), "178889 bytes long, over the 16384 allowed"},
		{strings.Repeat("a", 63) + strings.Repeat("."+strings.Repeat("a", 63), 300), "bytes long, over the 16384 allowed"},
	} {
		_, err := ParseNetwork(c.in)
		if ErrorCode(err) != CodeInvalid || !strings.Contains(ErrorMessage(err), c.want) || len(ErrorMessage(err)) > 300 {
			t.Errorf("%.40s... (%d bytes): got %v, want invalid %q", c.in, len(c.in), err, c.want)
		}
	}
	if err := (Limits{Network: hosts(10000)}).Validate(); ErrorCode(err) != CodeInvalid {
		t.Errorf("Validate: %v", err)
	}
}

func TestNetworkRuleAllows(t *testing.T) {
	rules, _ := ParseNetwork("*.example.com,api.test:8443,*:22")
	for _, c := range []struct {
		host string
		port int
		want bool
	}{
		{"a.example.com", 443, true},
		{"a.b.example.com", 80, true},
		{"example.com", 443, false},
		{"notexample.com", 443, false},
		{"api.test", 8443, true},
		{"api.test", 443, false},
		{"anything.org", 22, true},
	} {
		got := false
		for _, r := range rules {
			got = got || r.Allows(c.host, c.port)
		}
		if got != c.want {
			t.Errorf("%s:%d allowed %v, want %v", c.host, c.port, got, c.want)
		}
	}
}

func TestLimitsHasNetwork(t *testing.T) {
	for network, want := range map[string]bool{"": false, "none": false, "NONE": false, "pypi.org": true, "*": true, "http://x": false} {
		if got := (Limits{Network: network}).HasNetwork(); got != want {
			t.Errorf("HasNetwork of %q = %v", network, got)
		}
	}
}

func TestLimitsValidateNetwork(t *testing.T) {
	err := Limits{Network: "http://x"}.Validate()
	if ErrorCode(err) != CodeInvalid || !strings.Contains(ErrorMessage(err), `network "http://x"`) {
		t.Fatalf("got %v", err)
	}
	if got := (Limits{}).WithDefaults(Limits{Network: "pypi.org"}).Network; got != "pypi.org" {
		t.Fatalf("default network not taken: %q", got)
	}
	if got := (Limits{Network: "none"}).WithDefaults(Limits{Network: "pypi.org"}).Network; got != "none" {
		t.Fatalf("none did not override the default: %q", got)
	}
}

func TestReachedNoHost(t *testing.T) {
	for out, want := range map[string]bool{
		"urllib.error.URLError: <urlopen error [Errno -3] Temporary failure in name resolution>": true,
		"curl: (6) Could not resolve host: example.org":                                          true,
		"Error: getaddrinfo ENOTFOUND example.org":                                               true,
		"ValueError: invalid literal":                                                            false,
	} {
		if got := ReachedNoHost(out); got != want {
			t.Errorf("ReachedNoHost(%q) = %v", out, got)
		}
	}
}
