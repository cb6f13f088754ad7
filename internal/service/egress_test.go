package service

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/runtime"
	"github.com/cove-sandbox/cove/internal/runtime/native/nativetest"
)

// serveOn starts an HTTP (or HTTPS) server on addr of the host.
func serveOn(t *testing.T, addr string, tls bool) string {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from the host: %s", r.URL.Path)
	}))
	srv.Listener = ln
	if tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	return ln.Addr().String()
}

// TestNetworkLimitReachesOnlyItsHosts runs Python in real sandboxes that
// reach servers on the host through the egress proxy. The servers stand on
// 127.0.0.2 and 127.0.0.3, the host's loopback but not the sandbox's (whose
// 127.0.0.1 is its own); the operator allows 127.0.0.2 as a private
// address, not 127.0.0.3.
func TestNetworkLimitReachesOnlyItsHosts(t *testing.T) {
	be, _ := nativetest.New(t)
	svc := New(be, Options{Defaults: cove.DefaultLimits(), NetworkPrivate: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}})
	t.Cleanup(func() { svc.Close(context.Background()) })
	ctx := context.Background()
	plain := serveOn(t, "127.0.0.2:0", false)
	secure := serveOn(t, "127.0.0.2:0", true)
	other := serveOn(t, "127.0.0.3:0", false)

	run := func(t *testing.T, id, code string) string {
		t.Helper()
		st, err := svc.Exec(ctx, id, cove.ExecRequest{Cmd: []string{"python3", "-c", code}})
		if err != nil {
			t.Fatal(err)
		}
		res, err := cove.Collect(st)
		if err != nil {
			t.Fatal(err)
		}
		return res.Stdout + res.Stderr
	}
	const fetch = `
import ssl, sys, urllib.request, urllib.error
ctx = ssl._create_unverified_context()
for url in sys.argv[1:] if len(sys.argv) > 1 else URLS:
    try:
        print(url, "->", urllib.request.urlopen(url, context=ctx, timeout=10).read().decode())
    except urllib.error.HTTPError as e:
        print(url, "->", e.code, e.read().decode().strip())
    except Exception as e:
        print(url, "->", type(e).__name__, e)
`
	urls := fmt.Sprintf("URLS = [%q, %q, %q]\n", "http://"+plain+"/a", "https://"+secure+"/b", "http://"+other+"/c")

	sb, err := svc.CreateSandbox(ctx, cove.SandboxSpec{Limits: cove.Limits{Network: plain + ", " + strings.ToUpper(secure)}})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.DeleteSandbox(ctx, sb.ID)
	if want := plain + "," + secure; sb.Limits.Network != want {
		t.Errorf("network limit kept as %q, want %q", sb.Limits.Network, want)
	}
	// The proxy's variables, Node's switch for them among them.
	if env := run(t, sb.ID, "import os; print(os.environ['HTTPS_PROXY'], os.environ['NODE_USE_ENV_PROXY'])"); env != "http://127.0.0.1:3128 1\n" {
		t.Errorf("the proxy's environment: %q", env)
	}
	out := run(t, sb.ID, urls+fetch)
	for _, want := range []string{
		"/a -> hello from the host: /a",
		"/b -> hello from the host: /b",
		// Not in the limit, and no limit could allow it: the operator
		// did not list it.
		"/c -> 403 cove: 127.0.0.3 is a private or reserved address",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	t.Run("an allowed host at an address the operator did not allow", func(t *testing.T) {
		// Named as an address, it is refused when the sandbox is made:
		// no program could ever reach it.
		_, err := svc.CreateSandbox(ctx, cove.SandboxSpec{Limits: cove.Limits{Network: other}})
		if cove.ErrorCode(err) != cove.CodeInvalid || !strings.Contains(cove.ErrorMessage(err), "network limit: 127.0.0.3 is a private or reserved address, which sandboxes may not reach (the operator can allow it with network_private)") {
			t.Fatalf("a network limit naming an address the operator did not allow: %v", err)
		}
	})

	t.Run("no network limit", func(t *testing.T) {
		sb, err := svc.CreateSandbox(ctx, cove.SandboxSpec{})
		if err != nil {
			t.Fatal(err)
		}
		defer svc.DeleteSandbox(ctx, sb.ID)
		out := run(t, sb.ID, "import os; print('proxy:', os.environ.get('HTTPS_PROXY'))\n"+fmt.Sprintf("URLS = [%q]\n", "http://"+plain+"/a")+fetch)
		if !strings.Contains(out, "proxy: None") || strings.Contains(out, "hello from the host") || !strings.Contains(out, "URLError") {
			t.Errorf("a sandbox without a network limit reached out:\n%s", out)
		}
	})

	t.Run("the proxy ends with its sandbox", func(t *testing.T) {
		// A server on the host that accepts a tunnel and holds it.
		ln, err := net.Listen("tcp", "127.0.0.2:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		sb, err := svc.CreateSandbox(ctx, cove.SandboxSpec{Limits: cove.Limits{Network: ln.Addr().String()}})
		if err != nil {
			t.Fatal(err)
		}
		code := fmt.Sprintf(`import socket, time
s = socket.create_connection(("127.0.0.1", 3128))
s.sendall(b"CONNECT %[1]s HTTP/1.1\r\nHost: %[1]s\r\n\r\n")
print(s.recv(100), flush=True)
time.sleep(60)
`, ln.Addr().String())
		if _, err := svc.StartProcess(ctx, sb.ID, cove.ProcessRequest{Cmd: []string{"python3", "-c", code}}); err != nil {
			t.Fatal(err)
		}
		ln.(*net.TCPListener).SetDeadline(time.Now().Add(10 * time.Second))
		c, err := ln.Accept()
		if err != nil {
			t.Fatalf("the tunnel did not arrive: %v", err)
		}
		defer c.Close()
		if err := svc.DeleteSandbox(ctx, sb.ID); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err != io.EOF {
			t.Fatalf("the tunnel outlived its sandbox: read gave %v, want EOF", err)
		}
	})
}

func TestNetworkLimitRefusals(t *testing.T) {
	svc, _ := newTestService(t)
	ctx := context.Background()
	_, err := svc.CreateSandbox(ctx, cove.SandboxSpec{Limits: cove.Limits{Network: "https://pypi.org/simple"}})
	if cove.ErrorCode(err) != cove.CodeInvalid || !strings.Contains(cove.ErrorMessage(err), "give a host, not a URL") {
		t.Fatalf("got %v", err)
	}
}

// listenerInstance is a sandbox whose "inside" is the host's loopback, to
// watch what createInstance does with the proxy's listener.
type listenerInstance struct {
	runtime.Instance
	done chan struct{}
	ln   net.Listener
}

func (i *listenerInstance) Done() <-chan struct{} { return i.done }
func (i *listenerInstance) Listen(addr string) (net.Listener, error) {
	var err error
	i.ln, err = net.Listen("tcp", "127.0.0.1:0")
	return i.ln, err
}

type listenerBackend struct {
	runtime.Backend
	inst *listenerInstance
}

func (b *listenerBackend) Create(ctx context.Context, spec runtime.Spec) (runtime.Instance, error) {
	return b.inst, nil
}

// TestProxyEndsWithItsSandbox checks that the proxy's listener, a socket
// that would keep the sandbox's network namespace alive, closes when the
// sandbox dies.
func TestProxyEndsWithItsSandbox(t *testing.T) {
	inst := &listenerInstance{done: make(chan struct{})}
	s := New(&listenerBackend{inst: inst}, Options{})
	if _, err := s.createInstance(context.Background(), runtime.Spec{ID: "x", Limits: cove.Limits{Network: "pypi.org"}}); err != nil {
		t.Fatal(err)
	}
	addr := inst.ln.Addr().String()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("the proxy does not listen: %v", err)
	}
	c.Close()
	close(inst.done)
	deadline := time.Now().Add(2 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the proxy still listens after its sandbox died")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// unlistenableInstance is a sandbox in which the proxy's socket cannot be
// made; it records how it was taken down.
type unlistenableInstance struct {
	runtime.Instance
	stopped, destroyed bool
}

func (i *unlistenableInstance) Listen(addr string) (net.Listener, error) {
	return nil, cove.Errorf(cove.CodeUnavailable, "listening on %s: no", addr)
}
func (i *unlistenableInstance) Stop(context.Context) error    { i.stopped = true; return nil }
func (i *unlistenableInstance) Destroy(context.Context) error { i.destroyed = true; return nil }

type unlistenableBackend struct {
	runtime.Backend
	inst *unlistenableInstance
}

func (b *unlistenableBackend) Create(context.Context, runtime.Spec) (runtime.Instance, error) {
	return b.inst, nil
}

// TestProxyFailureKeepsAResumedWorkspace: a sandbox started again whose
// proxy cannot be served is stopped, keeping the workspace that holds the
// user's files; a new one is destroyed, leaving nothing behind.
func TestProxyFailureKeepsAResumedWorkspace(t *testing.T) {
	for _, resume := range []bool{true, false} {
		inst := &unlistenableInstance{}
		s := New(&unlistenableBackend{inst: inst}, Options{})
		_, err := s.createInstance(context.Background(), runtime.Spec{ID: "x", Limits: cove.Limits{Network: "pypi.org"}, Resume: resume})
		if cove.ErrorCode(err) != cove.CodeUnavailable {
			t.Fatalf("resume %v: %v, want the Listen error", resume, err)
		}
		if inst.destroyed == resume || inst.stopped != resume {
			t.Errorf("resume %v: stopped %v, destroyed %v; want the workspace kept only when resumed", resume, inst.stopped, inst.destroyed)
		}
	}
}

// listenerBackends gives each sandbox a listenerInstance of its own.
type listenerBackends struct {
	runtime.Backend
}

func (b *listenerBackends) Create(ctx context.Context, spec runtime.Spec) (runtime.Instance, error) {
	return &listenerInstance{done: make(chan struct{})}, nil
}

// TestProxiesShareOneBound: the connections of all sandboxes' proxies
// count against one bound of the server, so that many sandboxes cannot
// take every file descriptor cove may open.
func TestProxiesShareOneBound(t *testing.T) {
	s := New(&listenerBackends{}, Options{NetworkConns: 1})
	var insts []*listenerInstance
	for _, id := range []string{"a", "b"} {
		inst, err := s.createInstance(context.Background(), runtime.Spec{ID: id, Limits: cove.Limits{Network: "pypi.org"}})
		if err != nil {
			t.Fatal(err)
		}
		defer close(inst.(*listenerInstance).done)
		insts = append(insts, inst.(*listenerInstance))
	}
	first, err := net.Dial("tcp", insts[0].ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	// The first sandbox's connection, which sends nothing yet, holds the
	// server's one place.
	time.Sleep(100 * time.Millisecond)
	second, err := net.Dial("tcp", insts[1].ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	second.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, _ := io.ReadAll(second)
	if !strings.HasPrefix(string(b), "HTTP/1.1 503 cove: the server's proxies serve as many connections as it allows") {
		t.Fatalf("another sandbox's connection over the server's bound: %q", b)
	}
	if n := networkConns(0); n < 64 {
		t.Errorf("the default bound is %d connections", n)
	}
}

// TestEgressMetrics counts a sandbox's refused request to its proxy in
// cove_egress_requests_total.
func TestEgressMetrics(t *testing.T) {
	be, _ := nativetest.New(t)
	reg := prometheus.NewRegistry()
	svc := New(be, Options{Defaults: cove.DefaultLimits(), Metrics: NewMetrics(reg)})
	t.Cleanup(func() { svc.Close(context.Background()) })
	ctx := context.Background()
	sb, err := svc.CreateSandbox(ctx, cove.SandboxSpec{Limits: cove.Limits{Network: "pypi.org"}})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.DeleteSandbox(ctx, sb.ID)
	st, err := svc.Exec(ctx, sb.ID, cove.ExecRequest{Cmd: []string{"python3", "-c", `
import urllib.request
try:
    urllib.request.urlopen("http://example.org/", timeout=10)
except Exception as e:
    print(e)`}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := cove.Collect(st)
	if err != nil || !strings.Contains(res.Stdout, "403") {
		t.Fatalf("%+v %v", res, err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() == "cove_egress_requests_total" {
			for _, m := range mf.GetMetric() {
				got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
			}
		}
	}
	if got["refused"] != 1 || len(got) != 1 {
		t.Fatalf("cove_egress_requests_total: %v, want refused 1", got)
	}
}
