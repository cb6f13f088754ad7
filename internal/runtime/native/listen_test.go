package native

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/runtime"
)

// TestListenLetsTheNamespaceGo: once the proxy's socket is made, cove
// holds the sandbox's network namespace through it alone, so that a
// sandbox whose agent died (and that nobody deleted yet) leaves no
// namespace behind once the proxy closes its listener.
func TestListenLetsTheNamespaceGo(t *testing.T) {
	b := newTestBackend(t)
	l := cove.DefaultLimits()
	l.Network = "pypi.org"
	id := fmt.Sprintf("listen%d", os.Getpid())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	inst, err := b.Create(ctx, runtime.Spec{ID: id, Limits: l})
	if err != nil {
		t.Fatal(err)
	}
	defer inst.Destroy(context.Background())
	sb := inst.(*sandbox)
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", sb.proc.Pid))
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Readlink("/proc/self/ns/net")
	if ns == host {
		t.Fatalf("the sandbox shares the host's network namespace %s", ns)
	}
	// held lists the descriptors of this process that name the namespace.
	held := func() []string {
		var fds []string
		ents, _ := os.ReadDir("/proc/self/fd")
		for _, e := range ents {
			if dst, _ := os.Readlink(filepath.Join("/proc/self/fd", e.Name())); dst == ns {
				fds = append(fds, e.Name())
			}
		}
		return fds
	}
	// Until Listen, cove holds the namespace for it, which held sees.
	if fds := held(); len(fds) == 0 {
		t.Fatalf("no descriptor names the namespace %s before Listen", ns)
	}
	ln, err := sb.Listen("127.0.0.1:3128")
	if err != nil {
		t.Fatal(err)
	}
	// The socket is the sandbox's: its 127.0.0.1:3128 answers inside.
	out := runSh(t, inst, `/usr/bin/python3 -c "import socket; socket.create_connection(('127.0.0.1', 3128)); print('connected')"`)
	if out != "connected\n" {
		t.Errorf("connecting to the listener from inside: %q", out)
	}
	if _, err := sb.Listen("127.0.0.1:3129"); cove.ErrorCode(err) != cove.CodeConflict {
		t.Errorf("a second Listen: %v, want a conflict", err)
	}
	sb.proc.Kill()
	select {
	case <-inst.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the agent did not die")
	}
	ln.(*net.TCPListener).Close()
	if fds := held(); len(fds) > 0 {
		t.Errorf("the dead sandbox's network namespace %s is still held by descriptors %v", ns, fds)
	}
}
