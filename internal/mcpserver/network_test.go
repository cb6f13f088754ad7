package mcpserver

import (
	"context"
	"net/netip"
	"strings"
	"testing"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/egress/egresstest"
	"github.com/cove-sandbox/cove/internal/runtime/native/nativetest"
	"github.com/cove-sandbox/cove/internal/service"
)

// TestNetworkArgument gives sandboxes made over MCP a network limit: the
// program reaches a server on the host (127.0.0.2, the host's loopback but
// not the sandbox's) through cove's proxy.
func TestNetworkArgument(t *testing.T) {
	be, _ := nativetest.New(t)
	svc := service.New(be, service.Options{Defaults: cove.DefaultLimits(), NetworkPrivate: []netip.Prefix{egresstest.Private}})
	t.Cleanup(func() { svc.Close(context.Background()) })
	addr := egresstest.HostServer(t)
	fetch := `import urllib.request; print(urllib.request.urlopen("http://` + addr + `/").read().decode())`

	c := connect(t, New(svc, Options{}))
	var sb sandboxOutput
	res := c.ok("create_sandbox", map[string]any{"language": "python", "network": addr}, &sb)
	if sb.Network != addr || !strings.Contains(text(res), "network to "+addr) {
		t.Fatalf("create_sandbox: %+v\n%s", sb, text(res))
	}
	if got := text(c.ok("run_code", map[string]any{"sandbox_id": sb.SandboxID, "code": fetch}, nil)); !strings.Contains(got, "from the host") {
		t.Fatalf("run_code in the sandbox: %s", got)
	}
	if got := text(c.ok("run_code", map[string]any{"language": "python", "network": addr, "code": fetch}, nil)); !strings.Contains(got, "from the host") {
		t.Fatalf("run_code in a fresh sandbox: %s", got)
	}
	c.fails("run_code", map[string]any{"sandbox_id": sb.SandboxID, "network": addr, "code": "1"}, "network applies to a fresh sandbox")

	// A program that tries to reach a host gets a hint to give it one.
	reach := `import urllib.request; urllib.request.urlopen("http://example.org/", timeout=10)`
	if got := text(c.ok("run_code", map[string]any{"language": "python", "code": reach}, nil)); !strings.Contains(got, "hint: the program could not reach a host: the sandbox has no network; pass network") {
		t.Errorf("no network, fresh sandbox: %s", got)
	}
	var plain sandboxOutput
	c.ok("create_sandbox", map[string]any{"language": "python"}, &plain)
	if got := text(c.ok("run_code", map[string]any{"sandbox_id": plain.SandboxID, "code": reach}, nil)); !strings.Contains(got, "hint: the program could not reach a host: the sandbox has no network; create a sandbox with network") {
		t.Errorf("no network, existing sandbox: %s", got)
	}
	got := text(c.ok("run_code", map[string]any{"sandbox_id": sb.SandboxID, "code": reach}, nil))
	if !strings.Contains(got, "hint: the sandbox may reach only "+addr+"; the proxy's refusal (403) names the host") {
		t.Errorf("a host outside the limit: %s", got)
	}
	// The refusal suggests the tools' network argument, not the CLI's flag.
	if !strings.Contains(got, `e.g. network: "example.org"`) || strings.Contains(got, "--network") {
		t.Errorf("the refusal in the tools' terms: %s", got)
	}
	// An address the proxy refuses whatever the limit (here a loopback
	// one the operator did not list) is the operator's to allow: a
	// network argument that names one is refused at once.
	private := `import urllib.request; urllib.request.urlopen("http://127.0.0.3:9/", timeout=10)`
	c.fails("run_code", map[string]any{"language": "python", "network": "127.0.0.3:9", "code": private}, "network limit: 127.0.0.3 is a private or reserved address, which sandboxes may not reach (the operator can allow it with network_private)")
	c.fails("create_sandbox", map[string]any{"network": "https://pypi.org/simple"}, "give a host, not a URL")
}

// TestPipHint checks that pip's refusal to install into the host's
// externally managed Python (PEP 668), which comes before any use of the
// network, gets a hint to use a virtual environment and the network pip
// needs.
func TestPipHint(t *testing.T) {
	svc := newService(t)
	c := connect(t, New(svc, Options{}))
	var out execOutput
	res := c.ok("run_code", map[string]any{"language": "bash", "code": "python3 -m pip install --no-index cove-no-such-package"}, &out)
	if !strings.Contains(out.Stdout+out.Stderr, "externally-managed-environment") {
		t.Skipf("the host's Python is not externally managed (PEP 668), or has no pip: %s", text(res))
	}
	for _, want := range []string{"hint: pip does not install into the system's Python", "python3 -m venv .venv && .venv/bin/pip install", `pass network "pypi.org,files.pythonhosted.org"`} {
		if !strings.Contains(text(res), want) {
			t.Errorf("fresh sandbox: %q lacks %q", text(res), want)
		}
	}
	var sb sandboxOutput
	c.ok("create_sandbox", map[string]any{}, &sb)
	res = c.ok("exec_command", map[string]any{"sandbox_id": sb.SandboxID, "command": "pip install --no-index cove-no-such-package"}, &out)
	if !strings.Contains(out.Hint, "python3 -m venv .venv") || !strings.Contains(out.Hint, `create a sandbox with network "pypi.org,files.pythonhosted.org"`) {
		t.Errorf("existing sandbox: %+v\n%s", out, text(res))
	}
}

// TestToolNetworkSyntax checks the proxy's suggestion rewritten in the
// tools' terms.
func TestToolNetworkSyntax(t *testing.T) {
	tests := map[string]string{
		"example.org:80 is not in this sandbox's network limit (pypi.org): create the sandbox with it, e.g. --network example.org\n": "example.org:80 is not in this sandbox's network limit (pypi.org): create the sandbox with it, e.g. network: \"example.org\"\n",
		"403 ...: create the sandbox with it, e.g. --network example.org:8080.":                                                      "403 ...: create the sandbox with it, e.g. network: \"example.org:8080\".",
		"HTTP Error 403: ... e.g. --network [2001:db8::1]:8443)":                                                                     "HTTP Error 403: ... e.g. network: \"[2001:db8::1]:8443\")",
		"cove run --network x.org": "cove run --network x.org",
	}
	for in, want := range tests {
		if got := toolNetworkSyntax(in); got != want {
			t.Errorf("toolNetworkSyntax(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestWaitedForNetworkHint checks the hint of a network tool stopped at
// its time limit in a sandbox without network, and that other timeouts
// keep the time limit's hint.
func TestWaitedForNetworkHint(t *testing.T) {
	timeout := func(out string, network string) *cove.ExecResult {
		return &cove.ExecResult{Verdict: cove.VerdictTimeout, Stdout: out, Limits: cove.Limits{Network: network, Timeout: 30e9}}
	}
	tests := []struct {
		name    string
		res     *cove.ExecResult
		info    runInfo
		want    string
		wantNot string
	}{
		{"npm", timeout("", ""), runInfo{command: "cd app && npm install"}, `npm may have been waiting for one; create a sandbox with network naming the registry, such as "registry.npmjs.org"`, "timeout_seconds (up to"},
		{"pip in a fresh sandbox", timeout("\n", ""), runInfo{newSandbox: true, command: ".venv/bin/pip install requests"}, `pass network with "pypi.org,files.pythonhosted.org"`, ""},
		{"git clone", timeout("", ""), runInfo{command: "git clone https://github.com/x/y"}, "git clone may have been waiting", ""},
		{"curl with no host", timeout("curl: (6) Could not resolve host: x", ""), runInfo{command: "curl -s x"}, "curl may have been waiting", ""},
		{"npm that printed", timeout("added 3 packages\n", ""), runInfo{command: "npm test"}, "pass a larger timeout_seconds", "no network"},
		{"npm with network", timeout("", "registry.npmjs.org"), runInfo{command: "npm install"}, "pass a larger timeout_seconds", "no network"},
		{"no network tool", timeout("", ""), runInfo{command: "sleep 100; echo curling"}, "pass a larger timeout_seconds", "no network"},
		{"git status", timeout("", ""), runInfo{command: "git status"}, "pass a larger timeout_seconds", "no network"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := execHint(tt.res, tt.info)
			if !strings.Contains(got, tt.want) || (tt.wantNot != "" && strings.Contains(got, tt.wantNot)) {
				t.Errorf("hint %q, want %q and not %q", got, tt.want, tt.wantNot)
			}
		})
	}
}
