package native

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/agent"
	"github.com/cove-sandbox/cove/internal/runtime"
)

// holdInotify takes every inotify instance the kernel gives it (at most
// 4096), prints how many, and holds them until it is killed.
const holdInotify = `
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
fds = []
while len(fds) < 4096:
    fd = libc.inotify_init1(0)
    if fd < 0:
        break
    fds.append(fd)
print("holding", len(fds), os.strerror(ctypes.get_errno()), flush=True)
time.sleep(60)
`

// TestSandboxCannotExhaustHostUserCounts: the kernel counts a user's
// inotify instances (and watches, message queue bytes, queued signals) up
// the chain of user namespaces, against the owner of each namespace in its
// parent. A sandbox that takes every inotify instance it can must not
// leave root on the host (cove itself, the host's services, every other
// sandbox whose namespace root owned) without one.
func TestSandboxCannotExhaustHostUserCounts(t *testing.T) {
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("no /usr/bin/python3")
	}
	for _, launcher := range []bool{false, true} {
		t.Run(fmt.Sprintf("launcher=%v", launcher), func(t *testing.T) {
			b := newTestBackend(t)
			b.opts.Launcher = launcher
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			inst, err := b.Create(ctx, runtime.Spec{ID: fmt.Sprintf("ucount%d-%v", os.Getpid(), launcher), Limits: cove.DefaultLimits()})
			if err != nil {
				t.Fatal(err)
			}
			defer inst.Destroy(context.Background())

			// The sandbox's user namespace belongs to a host uid of its
			// own, not to root.
			pid := inst.(*sandbox).proc.Pid
			ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/user", pid))
			if err != nil {
				t.Fatal(err)
			}
			var owner uint32
			_, _, e := unix.Syscall(unix.SYS_IOCTL, ns.Fd(), unix.NS_GET_OWNER_UID, uintptr(unsafe.Pointer(&owner)))
			ns.Close()
			if e != 0 {
				t.Fatalf("NS_GET_OWNER_UID: %v", e)
			}
			if owner == 0 {
				t.Errorf("the sandbox's user namespace belongs to root")
			}

			spec := &agent.ExecSpec{Argv: []string{"/usr/bin/python3", "-c", holdInotify}, Env: testEnv, Dir: "/workspace", TimeoutMS: 30000}
			ex, err := inst.Agent().Start(ctx, spec, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer ex.Close()
			var out, errOut bytes.Buffer
			held := regexp.MustCompile(`holding (\d+)`)
			for !held.Match(out.Bytes()) {
				o, err := ex.Next()
				if err != nil {
					t.Fatalf("exec: %v", err)
				}
				if o.Result != nil {
					t.Fatalf("the program ended: %+v, stdout %q, stderr %q", o.Result, out.String(), errOut.String())
				}
				if o.Stream == 1 {
					out.Write(o.Data)
				} else {
					errOut.Write(o.Data)
				}
			}
			n, _ := strconv.Atoi(held.FindStringSubmatch(out.String())[1])
			if n == 0 {
				t.Fatalf("the sandbox got no inotify instance: %q", out.String())
			}
			fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
			if err != nil {
				t.Fatalf("while a sandbox holds %d inotify instances, root on the host cannot make one: %v", n, err)
			}
			unix.Close(fd)
		})
	}
}
