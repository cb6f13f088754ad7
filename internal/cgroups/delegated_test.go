package cgroups

import (
	"errors"
	"io/fs"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// onForkThread runs f on a locked OS thread that is not the main thread,
// the way an agent runs its fork thread, and lets that thread end with
// the goroutine (it may have been moved to other cgroups).
func onForkThread(f func()) {
	done := make(chan struct{})
	var try func()
	try = func() {
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			// Keep the main thread busy so that the next try gets another.
			go try()
			<-done
			runtime.UnlockOSThread()
			return
		}
		f()
		close(done)
	}
	go try()
	<-done
}

// fakeDelegated creates a sandbox on the fake host and opens its
// delegated side from the agent files, given in reverse order (the order
// must not matter).
func fakeDelegated(t *testing.T, h *fakeHost) (*Group, *Delegated) {
	t.Helper()
	g, err := h.manager().Create("sb", testLimits(), os.Getuid(), os.Getgid())
	if err != nil {
		t.Fatal(err)
	}
	files, err := g.AgentFiles()
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(files)
	d, err := OpenDelegated(h.version, files)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return g, d
}

func TestDelegatedV1Fake(t *testing.T) {
	t.Parallel()
	h := newFakeV1(t, machineLayout())
	_, d := fakeDelegated(t, h)
	if d.Version() != V1 {
		t.Fatalf("version %v", d.Version())
	}

	var err error
	onForkThread(func() { err = d.PrepareForkThread() })
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"memory", "cpu", "cpuacct", "freezer"} {
		if got := h.read(c + "/cove/sb/user/tasks"); got != "0" {
			t.Errorf("%s user/tasks = %q, want the calling thread (0)", c, got)
		}
	}
	if got := h.read("pids/cove/sb/user/tasks"); got != "" {
		t.Errorf("pids user/tasks = %q: PrepareForkThread must leave pids to EnterThread", got)
	}

	e, err := d.NewExec(1)
	if err != nil {
		t.Fatal(err)
	}
	if e.Name() != "e1" || e.CgroupFD() != -1 {
		t.Errorf("Name %q CgroupFD %d", e.Name(), e.CgroupFD())
	}
	if !h.exists("pids/cove/sb/user/e1") || h.exists("memory/cove/sb/user/e1") {
		t.Fatal("e1 not created in (only) the pids hierarchy")
	}
	if _, err := d.NewExec(1); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second NewExec(1): %v, want ErrExist", err)
	}
	// The kernel would create e1's files; the fake needs them written.
	h.write("pids/cove/sb/user/e1/tasks", "")
	h.write("pids/cove/sb/user/e1/cgroup.procs", "")
	if err := e.EnterThread(); err != nil {
		t.Fatal(err)
	}
	if got := h.read("pids/cove/sb/user/e1/tasks"); got != "0" {
		t.Errorf("e1/tasks = %q after EnterThread", got)
	}

	// The agent's own process is listed while its fork thread is inside:
	// Pids leaves it out, Kill spares it, Remove refuses.
	h.write("pids/cove/sb/user/e1/cgroup.procs", strconv.Itoa(os.Getpid())+"\n")
	if pids, err := e.Pids(); err != nil || len(pids) != 0 {
		t.Errorf("Pids = %v, %v; want none", pids, err)
	}
	if err := e.Kill(); err != nil {
		t.Errorf("Kill with only the agent inside: %v", err)
	}
	if err := e.Remove(); err == nil || !strings.Contains(err.Error(), "ParkThread") {
		t.Errorf("Remove with the agent inside: %v", err)
	}
	if err := d.ParkThread(); err != nil {
		t.Fatal(err)
	}
	if got := h.read("pids/cove/sb/user/tasks"); got != "0" {
		t.Errorf("pids user/tasks = %q after ParkThread", got)
	}
	os.Remove(h.root + "/pids/cove/sb/user/e1/tasks")
	os.Remove(h.root + "/pids/cove/sb/user/e1/cgroup.procs")
	if err := e.Remove(); err != nil {
		t.Fatal(err)
	}
	if h.exists("pids/cove/sb/user/e1") {
		t.Error("Remove left e1")
	}
	if err := e.Remove(); err != nil {
		t.Errorf("second Remove: %v", err)
	}

	h.write("memory/cove/sb/user/memory.usage_in_bytes", "1000\n")
	h.write("memory/cove/sb/user/memory.max_usage_in_bytes", "5000\n")
	h.write("memory/cove/sb/user/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n")
	h.write("pids/cove/sb/user/pids.current", "3\n")
	h.write("cpuacct/cove/sb/user/cpuacct.usage", "2000000\n")
	s, err := d.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if want := (Stats{MemoryCurrent: 1000, MemoryPeak: 5000, OOMKills: 1, CPUUsage: 2 * time.Millisecond, Pids: 3}); s != want {
		t.Errorf("Stats = %+v, want %+v", s, want)
	}
	if err := d.ResetPeak(); err != nil {
		t.Fatal(err)
	}
	if got := h.read("memory/cove/sb/user/memory.max_usage_in_bytes"); got != "0" {
		t.Errorf("memory.max_usage_in_bytes = %q after ResetPeak", got)
	}
}

func TestDelegatedV2Fake(t *testing.T) {
	t.Parallel()
	h := newFakeV2(t, "cpu memory pids")
	_, d := fakeDelegated(t, h)
	if err := d.PrepareForkThread(); err != nil {
		t.Errorf("PrepareForkThread: %v", err)
	}
	if err := d.ParkThread(); err != nil {
		t.Errorf("ParkThread: %v", err)
	}

	e, err := d.NewExec(3)
	if err != nil {
		t.Fatal(err)
	}
	if !h.exists("cove/sb/user/e3") {
		t.Fatal("e3 not created")
	}
	fd := e.CgroupFD()
	if fd < 0 {
		t.Fatalf("CgroupFD = %d", fd)
	}
	var a, b unix.Stat_t
	if err := unix.Fstat(fd, &a); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(h.root+"/cove/sb/user/e3", &b); err != nil {
		t.Fatal(err)
	}
	if a.Ino != b.Ino {
		t.Error("CgroupFD is not e3")
	}
	if err := e.EnterThread(); err != nil {
		t.Errorf("EnterThread: %v", err)
	}
	h.write("cove/sb/user/e3/cgroup.kill", "")
	h.write("cove/sb/user/e3/cgroup.procs", "")
	if err := e.Kill(); err != nil {
		t.Fatal(err)
	}
	if got := h.read("cove/sb/user/e3/cgroup.kill"); got != "1" {
		t.Errorf("e3/cgroup.kill = %q after Kill", got)
	}
	os.Remove(h.root + "/cove/sb/user/e3/cgroup.kill")
	os.Remove(h.root + "/cove/sb/user/e3/cgroup.procs")
	if err := e.Remove(); err != nil {
		t.Fatal(err)
	}
	if h.exists("cove/sb/user/e3") || e.CgroupFD() != -1 {
		t.Error("Remove left e3 or its descriptor")
	}

	if err := d.ResetPeak(); err != nil {
		t.Fatal(err)
	}
	if got := h.read("cove/sb/user/memory.peak"); got != "reset" {
		t.Errorf("memory.peak = %q after ResetPeak", got)
	}
	h.write("cove/sb/user/memory.current", "1000\n")
	h.write("cove/sb/user/memory.peak", "4096\n")
	h.write("cove/sb/user/memory.events", "low 0\nhigh 0\nmax 1\noom 1\noom_kill 1\n")
	h.write("cove/sb/user/pids.current", "2\n")
	h.write("cove/sb/user/cpu.stat", "usage_usec 7\n")
	s, err := d.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if want := (Stats{MemoryCurrent: 1000, MemoryPeak: 4096, OOMKills: 1, CPUUsage: 7 * time.Microsecond, Pids: 2}); s != want {
		t.Errorf("Stats = %+v, want %+v", s, want)
	}
}

func TestOpenDelegatedRejects(t *testing.T) {
	t.Parallel()
	h := newFakeV1(t, machineLayout())
	g, err := h.manager().Create("sb", testLimits(), os.Getuid(), os.Getgid())
	if err != nil {
		t.Fatal(err)
	}
	open := func() []*os.File {
		files, err := g.AgentFiles()
		if err != nil {
			t.Fatal(err)
		}
		return files
	}
	other, err := os.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	f := open()
	tests := []struct {
		name  string
		v     Version
		files []*os.File
		want  string
	}{
		{"no pids", V1, []*os.File{f[0], f[2]}, "no directory of the pids controller"},
		{"twice", V1, []*os.File{f[0], f[1], f[2], f[0]}, "two directories carry the memory controller"},
		{"not a cgroup", V1, []*os.File{f[0], f[1], f[2], other}, "not a cgroup v1 user directory"},
		{"v2 given v1", V2, []*os.File{f[0]}, "not a cgroup v2 user directory"},
		{"v2 given several", V2, []*os.File{f[0], f[1]}, "v2 takes one directory"},
		{"unknown version", Version(0), []*os.File{f[0]}, "unknown cgroup version"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := OpenDelegated(tt.v, tt.files)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("OpenDelegated: %v, want %q", err, tt.want)
			}
		})
	}
	for _, x := range f {
		x.Close()
	}
}
