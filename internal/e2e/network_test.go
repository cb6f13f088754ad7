package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"testing"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/egress/egresstest"
	"github.com/cove-sandbox/cove/internal/service"
)

// TestNetworkLimitOverREST creates sandboxes with a network limit through
// the REST API, as JSON and through the SDK, and reaches a server on the
// host (127.0.0.2: the host's loopback, not the sandbox's) from inside.
func TestNetworkLimitOverREST(t *testing.T) {
	srv := newServer(t, service.Options{Defaults: cove.DefaultLimits(), NetworkPrivate: []netip.Prefix{egresstest.Private}})
	addr := egresstest.HostServer(t)
	ctx := context.Background()

	post := func(path, body string) (int, map[string]any) {
		req, _ := http.NewRequest("POST", srv.url+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+srv.admin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		b, _ := io.ReadAll(resp.Body)
		json.Unmarshal(b, &out)
		return resp.StatusCode, out
	}
	code, sb := post("/v1/sandboxes", `{"language":"python","network":"`+strings.ToUpper(addr)+`"}`)
	if code != 201 && code != 200 {
		t.Fatalf("create: %d %v", code, sb)
	}
	limits, _ := sb["limits"].(map[string]any)
	if limits["network"] != addr {
		t.Fatalf("the sandbox's limits say network %v, want %q: %v", limits["network"], addr, sb)
	}
	id := sb["id"].(string)
	fetch := `import urllib.request; print(urllib.request.urlopen("http://` + addr + `/").read().decode())`
	c := srv.client(t, srv.admin)
	res, err := c.RunCode(ctx, id, cove.CodeRequest{Code: fetch})
	if err != nil {
		t.Fatal(err)
	}
	if out, err := cove.Collect(res); err != nil || out.Stdout != "from the host\n" {
		t.Fatalf("run in the sandbox: %+v %v", out, err)
	}

	// One call, limits at the top level and nested.
	for _, body := range []string{
		`{"language":"python","network":"` + addr + `","code":` + quote(fetch) + `}`,
		`{"language":"python","limits":{"network":"` + addr + `"},"code":` + quote(fetch) + `}`,
	} {
		if code, out := post("/v1/run", body); code != 200 || out["stdout"] != "from the host\n" {
			t.Fatalf("/v1/run %s: %d %v", body, code, out)
		}
	}
	if code, out := post("/v1/run", `{"language":"python","network":"a.org","limits":{"network":"b.org"},"code":"1"}`); code != 400 || !strings.Contains(out["error"].(map[string]any)["message"].(string), "network is given twice") {
		t.Fatalf("two networks: %d %v", code, out)
	}

	// Through the SDK, as `cove create --network` against a server does.
	info, err := c.CreateSandbox(ctx, cove.SandboxSpec{Limits: cove.Limits{Network: addr}})
	if err != nil {
		t.Fatal(err)
	}
	if info.Limits.Network != addr {
		t.Fatalf("the SDK's sandbox has network %q", info.Limits.Network)
	}
	if _, err := c.CreateSandbox(ctx, cove.SandboxSpec{Limits: cove.Limits{Network: "https://x.org"}}); cove.ErrorCode(err) != cove.CodeInvalid || !strings.Contains(cove.ErrorMessage(err), "give a host, not a URL") {
		t.Fatalf("a URL for network: %v", err)
	}
}

func quote(s string) string {
	var b bytes.Buffer
	json.NewEncoder(&b).Encode(s)
	return strings.TrimSpace(b.String())
}
