package native

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ll "github.com/landlock-lsm/go-landlock/landlock/syscall"
	"golang.org/x/sys/unix"

	"github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/agent"
	"github.com/cove-sandbox/cove/internal/agentbin"
	"github.com/cove-sandbox/cove/internal/runtime"
	"github.com/cove-sandbox/cove/internal/runtime/conformance"
	"github.com/cove-sandbox/cove/internal/volume"
)

func TestMain(m *testing.M) {
	// The test binary doubles as the agent, as the cove binary does.
	if agent.IsAgentInvocation() {
		agent.Main()
		return
	}
	os.Exit(m.Run())
}

// newTestBackend is nativetest.New, which this package cannot import.
func newTestBackend(t testing.TB) *Backend {
	t.Helper()
	return newTestBackendWith(t, Options{})
}

// newTestBackendWith is newTestBackend with opts (its directories are the
// test's own).
func newTestBackendWith(t testing.TB, opts Options) *Backend {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("native sandboxes need root (run the tests as root)")
	}
	dir := t.TempDir()
	data, run := filepath.Join(dir, "data"), filepath.Join(dir, "run")
	opts.DataDir, opts.RunDir = data, run
	b, err := New(context.Background(), opts)
	if err != nil {
		t.Fatalf("native backend: %v", err)
	}
	t.Cleanup(func() {
		unix.Unmount(filepath.Join(run, "cgroup-favor"), unix.MNT_DETACH)
		b.Close()
		if err := volume.Unmount(data); err != nil {
			t.Errorf("unmounting volume: %v", err)
		}
	})
	return b
}

// leftovers lists what sandbox id left on the host.
func leftovers(b *Backend) func(id string) []string {
	return func(id string) []string {
		var left []string
		matches, _ := filepath.Glob("/sys/fs/cgroup/*/cove/" + id)
		left = append(left, matches...)
		if _, err := os.Stat(b.vol.Path(id)); err == nil {
			left = append(left, b.vol.Path(id))
		}
		mi, _ := os.ReadFile("/proc/self/mountinfo")
		for _, l := range strings.Split(string(mi), "\n") {
			if strings.Contains(l, "/"+id+" ") || strings.Contains(l, "/"+id+"/") {
				left = append(left, "mount: "+l)
			}
		}
		return left
	}
}

func landlockAvailable() bool {
	v, err := ll.LandlockGetABIVersion()
	return err == nil && v > 0
}

func TestConformance(t *testing.T) {
	b := newTestBackend(t)
	conformance.Run(t, conformance.Env{
		Backend:   b,
		HostPaths: []string{b.opts.DataDir, b.opts.RunDir, "/work", "/etc/shadow"},
		Landlock:  landlockAvailable(),
		Leftovers: leftovers(b),
	})
}

func TestSweepRemovesLeftoversOfDeadOwners(t *testing.T) {
	b := newTestBackend(t)
	ctx := context.Background()
	// Sandboxes whose owner is gone: their slots record the ids, but no
	// process holds the slots' locks.
	dead := func(id string, ephemeral bool) {
		t.Helper()
		sl, err := b.slots.acquire(id, ephemeral)
		if err != nil {
			t.Fatal(err)
		}
		sl.f.Close()
		if _, err := b.vol.Create(id, 1<<20, 0, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := b.cg.Create(id, defaultLimitsForTest(), 0, 0); err != nil {
			t.Fatal(err)
		}
	}
	eph, kept := fmt.Sprintf("eph%d", os.Getpid()), fmt.Sprintf("kept%d", os.Getpid())
	dead(eph, true)
	dead(kept, false)
	// Without records to judge by, only the ephemeral one's workspace goes.
	if err := b.Sweep(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if left := leftovers(b)(eph); len(left) > 0 {
		t.Fatalf("sweep left %v", left)
	}
	left := leftovers(b)(kept)
	if len(left) != 1 || left[0] != b.vol.Path(kept) {
		t.Fatalf("want only the recorded sandbox's workspace kept, got %v", left)
	}
	// Whoever keeps the records may let it go.
	if err := b.Sweep(ctx, func(string) bool { return false }); err != nil {
		t.Fatal(err)
	}
	if left := leftovers(b)(kept); len(left) > 0 {
		t.Fatalf("sweep left %v", left)
	}
}

// TestSweepLeavesAnotherDataDirectorysWorkspace: the slots are the
// machine's, shared by every cove whatever its data directory. A sweep by
// one removes a dead sandbox's cgroups wherever it came from, but its
// workspace only in its own volume: it leaves the slot of another data
// directory's sandbox for a cove of that directory, which removes the
// workspace. (Before, the first sweep freed the slot and the workspace
// stayed for good.)
func TestSweepLeavesAnotherDataDirectorysWorkspace(t *testing.T) {
	slotsDir := t.TempDir()
	a := newTestBackendWith(t, Options{SlotsDir: slotsDir})
	b := newTestBackendWith(t, Options{SlotsDir: slotsDir})
	ctx := context.Background()
	id := fmt.Sprintf("other%d", os.Getpid())
	sl, err := a.slots.acquire(id, true)
	if err != nil {
		t.Fatal(err)
	}
	sl.f.Close() // its owner died
	if _, err := a.vol.Create(id, 1<<20, 0, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := a.cg.Create(id, defaultLimitsForTest(), 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := b.Sweep(ctx, nil); err != nil {
		t.Fatal(err)
	}
	left := leftovers(a)(id)
	if len(left) != 1 || left[0] != a.vol.Path(id) {
		t.Fatalf("after another data directory's sweep, want only the workspace left, got %v", left)
	}
	if err := a.Sweep(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if left := leftovers(a)(id); len(left) > 0 {
		t.Fatalf("its own data directory's sweep left %v", left)
	}
	if _, dead, err := a.slots.scan(); err != nil || len(dead) > 0 {
		t.Fatalf("slots still name dead sandboxes: %v %v", dead, err)
	}
}

// TestSweepFreesSlotsOfGoneDataDirectories: the slot of a dead sandbox
// whose data directory no longer exists is freed by any sweep, since no
// cove of that directory will come for it (its workspace went with the
// directory), and every start would otherwise step over it.
func TestSweepFreesSlotsOfGoneDataDirectories(t *testing.T) {
	slotsDir := t.TempDir()
	b := newTestBackendWith(t, Options{SlotsDir: slotsDir})
	gone := &slots{dir: slotsDir, max: maxSlots, data: filepath.Join(t.TempDir(), "removed-data")}
	kept := &slots{dir: slotsDir, max: maxSlots, data: t.TempDir()}
	for _, s := range []*slots{gone, kept} {
		sl, err := s.acquire(fmt.Sprintf("dead%d", os.Getpid()), true)
		if err != nil {
			t.Fatal(err)
		}
		sl.f.Close() // its owner died
	}
	if err := b.Sweep(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	_, dead, err := b.slots.scan()
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 1 {
		t.Fatalf("dead slots after the sweep: %v, want only the one of the data directory that exists", dead)
	}
	for _, d := range dead {
		if d.data != kept.data {
			t.Fatalf("the slot left names %s, want %s", d.data, kept.data)
		}
	}
}

// TestEmbeddedAgent boots a sandbox with the agent binary that cove embeds,
// the one users run.
func TestEmbeddedAgent(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("native sandboxes need root (run the tests as root)")
	}
	if agentbin.Binary() == nil {
		t.Skip("no agent is embedded for this architecture")
	}
	dir := t.TempDir()
	data, run := filepath.Join(dir, "data"), filepath.Join(dir, "run")
	b, err := New(context.Background(), Options{DataDir: data, RunDir: run, AgentBinary: agentbin.Binary(), AgentHash: agentbin.Hash()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		unix.Unmount(filepath.Join(run, "cgroup-favor"), unix.MNT_DETACH)
		b.Close()
		volume.Unmount(data)
	})
	conformance.Run(t, conformance.Env{Backend: b, Landlock: landlockAvailable(), Leftovers: leftovers(b)})
}

// TestResumeWithoutItsWorkspace: resuming a sandbox whose workspace is not
// there is not_found, which the service takes for files lost for good.
// A workspace that is there but cannot be reached now (here a link that
// loops) is the volume's trouble, unavailable: its files are not given
// up for lost.
func TestResumeWithoutItsWorkspace(t *testing.T) {
	b := newTestBackend(t)
	ctx := context.Background()
	id := fmt.Sprintf("resume%d", os.Getpid())
	inst, err := b.Create(ctx, runtime.Spec{ID: id, Limits: defaultLimitsForTest()})
	if err != nil {
		t.Fatal(err)
	}
	if err := inst.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	ws := b.vol.Path(id)
	t.Cleanup(func() {
		os.Remove(ws)
		b.DeleteWorkspace(ctx, id)
	})
	if err := os.RemoveAll(ws); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Base(ws), ws); err != nil {
		t.Fatal(err)
	}
	_, err = b.Create(ctx, runtime.Spec{ID: id, Limits: defaultLimitsForTest(), Resume: true})
	if cove.ErrorCode(err) != cove.CodeUnavailable || !strings.Contains(cove.ErrorMessage(err), "cannot be reached") {
		t.Fatalf("resuming over a workspace that cannot be reached: %v, want unavailable", err)
	}
	if err := os.Remove(ws); err != nil {
		t.Fatal(err)
	}
	_, err = b.Create(ctx, runtime.Spec{ID: id, Limits: defaultLimitsForTest(), Resume: true})
	if cove.ErrorCode(err) != cove.CodeNotFound {
		t.Fatalf("resuming without a workspace: %v, want not_found", err)
	}
	if left := leftovers(b)(id); len(left) > 0 {
		t.Fatalf("the failed resumes left %v", left)
	}
}

// TestFileMaxRaised checks that the backend leaves the host's bound of
// open files at the kernel's maximum, as systemd does: below it, one
// sandbox's open files could use up the bound of every process of the
// host.
func TestFileMaxRaised(t *testing.T) {
	newTestBackend(t)
	b, err := os.ReadFile(fileMaxPath)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != "9223372036854775807" {
		t.Errorf("fs.file-max is %s after the backend opened, want the kernel's maximum", got)
	}
	if was, err := raiseFileMax(); err != nil || was != 0 {
		t.Errorf("raising it again: was %d, %v; want nothing to do", was, err)
	}
}
