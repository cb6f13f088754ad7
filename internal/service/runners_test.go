package service

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/runtime/native/nativetest"
)

// newReuseService returns a service that keeps up to two reset one-call
// sandboxes per owner.
func newReuseService(t *testing.T) *Service {
	t.Helper()
	svc, _ := newReuseServiceDirs(t)
	return svc
}

func newReuseServiceDirs(t *testing.T) (*Service, nativetest.Dirs) {
	t.Helper()
	be, dirs := nativetest.New(t)
	svc := New(be, Options{Defaults: cove.DefaultLimits(), RunReuse: 2})
	t.Cleanup(func() { svc.Close(context.Background()) })
	return svc, dirs
}

// awaitKept waits until the service keeps n reset sandboxes.
func awaitKept(t *testing.T, svc *Service, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ready, _, _ := svc.RunnersReady()
		if ready == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d reset sandboxes kept, want %d", ready, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func runAs(t *testing.T, svc *Service, ctx context.Context, lang, code string) *cove.ExecResult {
	t.Helper()
	return runIn(t, ctx, svc, cove.RunRequest{CodeRequest: cove.CodeRequest{Language: lang, Code: code}})
}

// TestRunReuseLeavesNothing: what a run leaves behind in its sandbox is gone
// for the next run that gets the same sandbox.
func TestRunReuseLeavesNothing(t *testing.T) {
	svc, dirs := newReuseServiceDirs(t)
	ctx := context.Background()
	dirty := `
set -e
echo secret > /workspace/left.txt
mkdir -p /workspace/d/e/f && echo x > /workspace/d/e/f/g
ln -s /etc/passwd /workspace/link
mkdir /workspace/locked && echo y > /workspace/locked/z && chmod 000 /workspace/locked
echo t > /tmp/t && mkdir /tmp/dir && echo s > /dev/shm/s
chmod 700 /workspace
chattr +dAC /workspace
setfattr -n user.mark -v 1 /workspace 2>/dev/null || python3 -c 'import os; os.setxattr("/workspace", "user.mark", b"1")'
(setsid sleep 1000 >/dev/null 2>&1 &)
hostname; id -u
`
	first := runAs(t, svc, ctx, "bash", dirty)
	if first.Verdict != cove.VerdictOK {
		t.Fatalf("dirtying run: %s %q %q", first.Verdict, first.Stdout, first.Stderr)
	}
	awaitKept(t, svc, 1)
	_, hits0, _ := svc.RunnersReady()
	check := `
import os, stat
print(sorted(os.listdir("/workspace")), sorted(os.listdir("/tmp")), sorted(os.listdir("/dev/shm")))
st = os.stat("/workspace")
import array, fcntl
flags = array.array("i", [0])
fd = os.open("/workspace", os.O_RDONLY)
fcntl.ioctl(fd, 0x80086601, flags)
print(oct(stat.S_IMODE(st.st_mode)), st.st_uid, st.st_gid, os.listxattr("/workspace"), hex(flags[0]))
print(oct(stat.S_IMODE(os.stat("/tmp").st_mode)), oct(stat.S_IMODE(os.stat("/dev/shm").st_mode)))
print(sorted(int(p) for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()))
`
	second := runAs(t, svc, ctx, "python", check)
	if _, hits, _ := svc.RunnersReady(); hits != hits0+1 {
		t.Fatalf("the second run did not reuse the sandbox (%d reuses, want %d)", hits, hits0+1)
	}
	want := "['main.py'] [] []\n0o755 1000 1000 [] 0x0\n0o1777 0o1777\n[1]\n"
	if second.Verdict != cove.VerdictOK || second.Stdout != want {
		t.Fatalf("the reused sandbox was not as new:\n got %q (%s, %q)\nwant %q", second.Stdout, second.Verdict, second.Stderr, want)
	}
	// Closing the service destroys the sandboxes it kept.
	awaitKept(t, svc, 1)
	if err := svc.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if ws, err := os.ReadDir(filepath.Join(dirs.Data, "volume", "ws")); err != nil || len(ws) > 0 {
		t.Fatalf("workspaces left after Close: %v %v", ws, err)
	}
}

// TestRunReuseStaysWithOwner: a kept sandbox goes only to runs of the key
// that used it, with the same limits.
func TestRunReuseStaysWithOwner(t *testing.T) {
	svc := newReuseService(t)
	ctx := context.Background()
	a, err := svc.CreateKey(ctx, cove.KeySpec{Name: "a"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := svc.CreateKey(ctx, cove.KeySpec{Name: "b"})
	if err != nil {
		t.Fatal(err)
	}
	ctxA, ctxB := cove.WithKey(ctx, &a.Key), cove.WithKey(ctx, &b.Key)
	// Each run tells the sandbox's boot time: the same sandbox, the same
	// time.
	boot := `stat -c %Y /proc/1`
	r1 := runAs(t, svc, ctxA, "bash", boot)
	awaitKept(t, svc, 1)
	r2 := runAs(t, svc, ctxB, "bash", boot)
	if _, hits, _ := svc.RunnersReady(); hits != 0 {
		t.Fatalf("key b got key a's sandbox (%d reuses)", hits)
	}
	awaitKept(t, svc, 2)
	runIn(t, ctxA, svc, cove.RunRequest{CodeRequest: cove.CodeRequest{Language: "bash", Code: boot}, Limits: cove.Limits{MemoryBytes: 100 << 20}})
	if _, hits, _ := svc.RunnersReady(); hits != 0 {
		t.Fatalf("a run with other limits got a kept sandbox (%d reuses)", hits)
	}
	// Limits of one execution are the run's own: a run with another
	// timeout and output cap may have the sandbox.
	r4 := runIn(t, ctxA, svc, cove.RunRequest{CodeRequest: cove.CodeRequest{Language: "bash", Code: boot}, Limits: cove.Limits{Timeout: 7 * time.Second, OutputBytes: 4096}})
	if _, hits, _ := svc.RunnersReady(); hits != 1 {
		t.Fatalf("key a's second run did not reuse its sandbox (%d reuses)", hits)
	}
	if r4.Stdout != r1.Stdout || strings.TrimSpace(r1.Stdout) == "" {
		t.Fatalf("key a's runs saw sandboxes booted at %q and %q, want the same", r1.Stdout, r4.Stdout)
	}
	_ = r2
	// And the run's own timeout holds in the reused sandbox (kept: a's
	// two, one of them with more memory, and b's).
	awaitKept(t, svc, 3)
	r5 := runIn(t, ctxA, svc, cove.RunRequest{CodeRequest: cove.CodeRequest{Language: "bash", Code: "sleep 5"}, Limits: cove.Limits{Timeout: 300 * time.Millisecond}})
	if _, hits, _ := svc.RunnersReady(); hits != 2 || r5.Verdict != cove.VerdictTimeout {
		t.Fatalf("a reused sandbox with a 300ms timeout: %d reuses, verdict %s", hits, r5.Verdict)
	}
}

// TestRunReuseRefusesWhatItCannotReset: a sandbox left with a System V IPC
// object, or one that held a background process, is destroyed, not kept.
func TestRunReuseRefusesWhatItCannotReset(t *testing.T) {
	svc := newReuseService(t)
	ctx := context.Background()
	shm := `
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
print(libc.shmget(0, 4096, 0o1000 | 0o600) >= 0)
`
	if res := runAs(t, svc, ctx, "python", shm); res.Stdout != "True\n" {
		t.Fatalf("shmget: %q %q", res.Stdout, res.Stderr)
	}
	// Let the reset finish, then see that nothing was kept.
	time.Sleep(300 * time.Millisecond)
	if ready, _, _ := svc.RunnersReady(); ready != 0 {
		t.Fatalf("a sandbox holding a shared memory segment was kept for reuse")
	}
	many := `mkdir /workspace/m && cd /workspace/m && seq 10001 | xargs touch && echo made`
	if res := runAs(t, svc, ctx, "bash", many); res.Stdout != "made\n" {
		t.Fatalf("making files: %q %q", res.Stdout, res.Stderr)
	}
	time.Sleep(300 * time.Millisecond)
	if ready, _, _ := svc.RunnersReady(); ready != 0 {
		t.Fatalf("a sandbox holding more files than a reset removes was kept for reuse")
	}
	runAs(t, svc, ctx, "python", "print(1)")
	awaitKept(t, svc, 1)
}

// TestRunReuseFreesDisk: a run that filled most of its disk limit leaves a
// reused sandbox with its whole limit.
func TestRunReuseFreesDisk(t *testing.T) {
	svc := newReuseService(t)
	ctx := context.Background()
	limits := cove.Limits{DiskBytes: 64 << 20}
	// A new file each time: the first one must be gone for the second
	// to fit.
	fill := `head -c 40M /dev/urandom > "$(mktemp -p /workspace)" && echo filled`
	for i := 0; i < 2; i++ {
		res := runIn(t, ctx, svc, cove.RunRequest{CodeRequest: cove.CodeRequest{Language: "bash", Code: fill}, Limits: limits})
		if res.Verdict != cove.VerdictOK || res.Stdout != "filled\n" {
			t.Fatalf("run %d: %s %q %q", i, res.Verdict, res.Stdout, res.Stderr)
		}
		awaitKept(t, svc, 1)
	}
	if _, hits, _ := svc.RunnersReady(); hits != 1 {
		t.Fatalf("the second run did not reuse the sandbox (%d reuses)", hits)
	}
}

// TestRunReuseWaitsForRequests: a request that reached a one-call run's
// sandbox through its id while the run lasted (here an upload still
// streaming when the run ends) is over before the reset begins, so what
// it wrote is gone for the next run.
func TestRunReuseWaitsForRequests(t *testing.T) {
	svc := newReuseService(t)
	ctx := context.Background()
	started := make(chan cove.Stream, 1)
	go func() {
		st, err := svc.Run(ctx, cove.RunRequest{CodeRequest: cove.CodeRequest{Language: "bash", Code: "sleep 1.5"}})
		if err != nil {
			t.Error(err)
		}
		started <- st
	}()
	var id string
	for deadline := time.Now().Add(10 * time.Second); id == ""; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the run's sandbox never showed in the list")
		}
		// Listed, and live (the record comes first).
		if l, err := svc.ListSandboxes(ctx, cove.ListOptions{}); err == nil && len(l.Sandboxes) == 1 {
			if _, err := svc.ListFiles(ctx, l.Sandboxes[0].ID, "", false); err == nil {
				id = l.Sandboxes[0].ID
			}
		}
	}
	pr, pw := io.Pipe()
	uploaded := make(chan error, 1)
	go func() {
		_, err := svc.WriteFile(ctx, id, "late.txt", pr, 0o644)
		uploaded <- err
	}()
	write := func(data string) {
		wrote := make(chan struct{})
		go func() {
			pw.Write([]byte(data))
			close(wrote)
		}()
		select {
		case <-wrote:
		case err := <-uploaded:
			t.Fatalf("the upload ended before all was written: %v", err)
		}
	}
	write("written while the run lasted, ")
	st := <-started
	if res, err := cove.Collect(st); err != nil || res.Verdict != cove.VerdictOK {
		t.Fatalf("run: %v %+v", err, res)
	}
	// The run has ended; its sandbox is being made ready for the next.
	time.Sleep(100 * time.Millisecond)
	write("and finished after it")
	pw.Close()
	if err := <-uploaded; err != nil {
		t.Fatalf("upload: %v", err)
	}
	awaitKept(t, svc, 1)
	res := runAs(t, svc, ctx, "bash", "ls /workspace")
	if _, hits, _ := svc.RunnersReady(); hits != 1 {
		t.Fatalf("the next run did not reuse the sandbox (%d reuses)", hits)
	}
	if res.Stdout != "main.sh\n" {
		t.Fatalf("the next run found %q in its workspace, want only its program", res.Stdout)
	}
}

// TestShutdownDuringReset: a server that shuts down while it resets a
// one-call sandbox destroys that sandbox before it returns.
func TestShutdownDuringReset(t *testing.T) {
	svc, dirs := newReuseServiceDirs(t)
	ctx := context.Background()
	// A sandbox with a twentieth of a core and thousands of files takes
	// its agent seconds to empty.
	res := runIn(t, ctx, svc, cove.RunRequest{
		CodeRequest: cove.CodeRequest{Language: "bash", Code: "mkdir /workspace/m && cd /workspace/m && seq 3000 | xargs touch"},
		Limits:      cove.Limits{CPUs: 0.05},
	})
	if res.Verdict != cove.VerdictOK {
		t.Fatalf("run: %+v", res)
	}
	start := time.Now()
	if err := svc.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if ws, err := os.ReadDir(filepath.Join(dirs.Data, "volume", "ws")); err != nil || len(ws) > 0 {
		t.Fatalf("workspaces left after Shutdown: %v %v", ws, err)
	}
	if took > 5*time.Second {
		t.Fatalf("Shutdown took %s: the reset was not cut short", took)
	}
}

// has reports whether a sandbox is kept for k.
func (r *runners) has(k runnerKey) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.ready[k]) > 0
}
