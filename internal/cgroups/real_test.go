package cgroups

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	cove "github.com/cove-sandbox/cove"
	"github.com/cove-sandbox/cove/internal/logtest"
	"golang.org/x/sys/unix"
)

// realV1 returns a Manager on the host's real cgroups, or skips when they
// are not v1 (the build machines are v1 hybrid; the v2 path is covered on
// a fake tree).
func realV1(tb testing.TB, runDir string) *Manager {
	tb.Helper()
	skipUnlessRoot(tb)
	m, err := New(Options{RunDir: runDir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		tb.Skipf("no usable cgroups on this host: %v", err)
	}
	if m.Version() != V1 {
		tb.Skipf("host has cgroup %v; this test covers v1", m.Version())
	}
	return m
}

// favorRunDir returns a run directory for New that is unmounted again
// when the test ends. The kernel keeps favoring dynamic modifications
// after the unmount; that is what cove wants anyway.
func favorRunDir(tb testing.TB) string {
	dir := tb.TempDir()
	tb.Cleanup(func() {
		for unix.Unmount(filepath.Join(dir, favorMountDir), 0) == nil {
		}
	})
	return dir
}

// testID returns a sandbox id no other run uses.
func testID() string { return fmt.Sprintf("test-%d-%08x", os.Getpid(), rand.Uint32()) }

// createReal creates a real group and registers its destruction, checking
// that nothing of it is left in any hierarchy.
func createReal(tb testing.TB, m *Manager, l cove.Limits, uid int) *Group {
	tb.Helper()
	id := testID()
	g, err := m.Create(id, l, uid, uid)
	if err != nil {
		tb.Fatalf("Create: %v", err)
	}
	tb.Cleanup(func() {
		if err := g.Destroy(); err != nil {
			tb.Errorf("Destroy: %v", err)
		}
		left, _ := filepath.Glob(filepath.Join(DefaultRoot, "*", DefaultParent, id))
		if len(left) > 0 {
			tb.Errorf("Destroy left %v", left)
		}
	})
	return g
}

// cgroupsOf parses /proc/<pid>[/task/<tid>]/cgroup into controller -> path.
func cgroupsOf(t *testing.T, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	return parseProcCgroup(string(data))
}

func parseProcCgroup(s string) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			out[c] = parts[2]
		}
	}
	return out
}

// checkIn fails unless the cgroups in got are those in want.
func checkIn(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	for c, p := range want {
		if got[c] != p {
			t.Errorf("%s: %s cgroup %q, want %q", what, c, got[c], p)
		}
	}
}

// gone reports whether pid has exited (or is a zombie).
func gone(pid int) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	_, rest, _ := strings.Cut(string(data), ") ")
	return strings.HasPrefix(rest, "Z")
}

// agentProc is the helper agent running in a user namespace.
type agentProc struct {
	t       *testing.T
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	replies chan string
	stderr  *logtest.Buffer
}

// startAgent starts the helper agent in a new user namespace whose root is
// uid (and gid uid) on the host, with files as its delegated directories.
func startAgent(t *testing.T, files []*os.File, uid int) *agentProc {
	t.Helper()
	a := &agentProc{t: t, replies: make(chan string, 16), stderr: &logtest.Buffer{}}
	a.cmd = exec.Command("/proc/self/exe")
	a.cmd.Env = []string{helperEnv + "=agent", helperFilesEnv + "=" + strconv.Itoa(len(files)), "PATH=/usr/bin:/bin"}
	a.cmd.ExtraFiles = files
	a.cmd.Stderr = a.stderr
	a.cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: uid, Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: uid, Size: 1}},
		// Become root of the namespace, that is uid on the host: without
		// this the process would keep host root's credentials.
		Credential:                 &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: true},
		GidMappingsEnableSetgroups: false,
	}
	var err error
	if a.stdin, err = a.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	stdout, err := a.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := a.cmd.Start(); err != nil {
		t.Fatalf("starting the agent: %v", err)
	}
	for _, f := range files {
		f.Close()
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			a.replies <- sc.Text()
		}
		close(a.replies)
	}()
	t.Cleanup(func() {
		a.stdin.Close()
		a.cmd.Process.Kill()
		a.cmd.Wait()
		if t.Failed() {
			t.Logf("agent stderr:\n%s", a.stderr.String())
		}
	})
	return a
}

// send sends a command and returns the reply, or the agent's error.
func (a *agentProc) send(cmd string) (string, error) {
	a.t.Helper()
	if _, err := io.WriteString(a.stdin, cmd+"\n"); err != nil {
		a.t.Fatalf("sending %q: %v", cmd, err)
	}
	select {
	case r, ok := <-a.replies:
		if !ok {
			a.t.Fatalf("agent exited during %q; stderr:\n%s", cmd, a.stderr.String())
		}
		if v, ok := strings.CutPrefix(r, "ok "); ok {
			return v, nil
		}
		return "", errors.New(strings.TrimPrefix(r, "err "))
	case <-time.After(30 * time.Second):
		a.t.Fatalf("no reply to %q", cmd)
		return "", nil
	}
}

// call is send that fails the test on an error.
func (a *agentProc) call(cmd string) string {
	a.t.Helper()
	v, err := a.send(cmd)
	if err != nil {
		a.t.Fatalf("%q: %v", cmd, err)
	}
	return v
}

// pidsOf parses a "pids" reply.
func pidsOf(s string) []int {
	pids, _ := parsePids([]byte(s))
	return pids
}

// waitFor polls cond for up to 10 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestCreateRealV1(t *testing.T) {
	m := realV1(t, "")
	uid, _ := testAgentIDs()
	g := createReal(t, m, cove.Limits{MemoryBytes: 96 << 20, CPUs: 1.5, Pids: 77}, uid)
	p := func(ctrl string, rel ...string) string {
		return filepath.Join(append([]string{DefaultRoot, ctrl, DefaultParent, g.ID()}, rel...)...)
	}
	for path, want := range map[string]string{
		p("memory", "user", "memory.limit_in_bytes"):          strconv.Itoa(96 << 20),
		p("memory", "user", "memory.memsw.limit_in_bytes"):    strconv.Itoa(96 << 20),
		p("memory", "user", "memory.swappiness"):              "0",
		p("memory", "user", "memory.kmem.tcp.limit_in_bytes"): strconv.Itoa(96 << 20),
		p("pids", "user", "pids.max"):                         "77",
		p("cpu", "user", "cpu.cfs_period_us"):                 "100000",
		p("cpu", "user", "cpu.cfs_quota_us"):                  "150000",
		p("pids", "pids.max"):                                 "max",
		p("cpu", "cpu.cfs_quota_us"):                          "150000", // the agent's work counts too
	} {
		if path == p("memory", "user", "memory.memsw.limit_in_bytes") && !exists(path) {
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(string(data)); got != want {
			t.Errorf("%s = %q, want %q", path, got, want)
		}
	}
	owner := func(path string) int {
		var st unix.Stat_t
		if err := unix.Stat(path, &st); err != nil {
			t.Fatal(err)
		}
		return int(st.Uid)
	}
	delegated := []string{p("pids", "user"), p("memory", "user", "memory.max_usage_in_bytes")}
	for _, c := range []string{"memory", "pids", "cpu", "cpuacct", "freezer"} {
		delegated = append(delegated, p(c, "user", "tasks"), p(c, "user", "cgroup.procs"))
	}
	for _, path := range delegated {
		if got := owner(path); got != uid {
			t.Errorf("%s owned by %d, want %d", path, got, uid)
		}
	}
	for _, path := range []string{p("memory", "user"), p("memory", "user", "memory.limit_in_bytes"), p("pids", "user", "pids.max"),
		p("cpu", "user", "cpu.cfs_quota_us"), p("pids", "tasks"), p("pids")} {
		if got := owner(path); got != 0 {
			t.Errorf("%s owned by %d, want root", path, got)
		}
	}
	s, err := g.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if s.Pids != 0 || s.OOMKills != 0 {
		t.Errorf("Stats of an empty group = %+v", s)
	}
	if ids, err := m.List(); err != nil || !slices.Contains(ids, g.ID()) {
		t.Errorf("List = %v, %v; want it to hold %s", ids, err, g.ID())
	}
	if _, err := m.Open(g.ID()); err != nil {
		t.Errorf("Open: %v", err)
	}
}

// TestDelegationV1 runs the whole v1 contract for real: an agent in a user
// namespace whose root is an unprivileged host uid works the delegated
// cgroups through the descriptors alone.
func TestDelegationV1(t *testing.T) {
	m := realV1(t, favorRunDir(t))
	uid, _ := testAgentIDs()
	g := createReal(t, m, cove.Limits{MemoryBytes: 64 << 20, CPUs: 0.25, Pids: 48}, uid)
	files, err := g.AgentFiles()
	if err != nil {
		t.Fatal(err)
	}
	a := startAgent(t, files, uid)
	if err := g.AddAgent(a.cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	ids := strings.Fields(a.call("go"))
	agentPid, _ := strconv.Atoi(ids[0])
	forkTid := ids[1]
	if agentPid != a.cmd.Process.Pid {
		t.Fatalf("agent reports pid %d, started %d (no pid namespace expected)", agentPid, a.cmd.Process.Pid)
	}

	top := "/" + DefaultParent + "/" + g.ID()
	user := top + "/user"
	// The agent stays in <id>/; only its fork thread moved to user/ (pids
	// excepted, which EnterThread handles per execution).
	checkIn(t, "agent", cgroupsOf(t, fmt.Sprintf("/proc/%d/cgroup", agentPid)),
		map[string]string{"memory": top, "pids": top, "cpu": top, "cpuacct": top, "freezer": top})
	checkIn(t, "fork thread", cgroupsOf(t, fmt.Sprintf("/proc/%d/task/%s/cgroup", agentPid, forkTid)),
		map[string]string{"memory": user, "pids": top, "cpu": user, "cpuacct": user, "freezer": user})

	// The agent can move its own thread through the delegated files, but
	// no limit file and no cgroup outside the user subtree is writable.
	if done := a.call("tamper"); done != "" {
		t.Errorf("the agent could write %s", done)
	}

	// Execution 1: a shell with a background and a foreground sleep.
	shPid, _ := strconv.Atoi(a.call("exec 1 cat /proc/self/cgroup; sleep 30 & sleep 30"))
	inE1 := map[string]string{"memory": user, "pids": user + "/e1", "cpu": user, "cpuacct": user, "freezer": user}
	checkIn(t, "shell", cgroupsOf(t, fmt.Sprintf("/proc/%d/cgroup", shPid)), inE1)
	waitFor(t, "the shell's cat output", func() bool { return strings.Contains(a.stderr.String(), "pids:"+user+"/e1") })
	checkIn(t, "cat (from its own /proc/self/cgroup)", parseProcCgroup(a.stderr.String()), inE1)

	var pids []int
	waitFor(t, "three processes in e1", func() bool {
		pids = pidsOf(a.call("pids 1"))
		return len(pids) == 3 || (len(pids) == 2 && !slices.Contains(pids, shPid)) // a shell may exec its last command
	})
	if slices.Contains(pids, agentPid) {
		t.Errorf("Pids lists the agent itself: %v", pids)
	}
	t.Logf("e1 holds %v; the agent's cat saw:\n%s", pids, a.stderr.String())
	for _, p := range pids {
		checkIn(t, fmt.Sprintf("process %d", p), cgroupsOf(t, fmt.Sprintf("/proc/%d/cgroup", p)), inE1)
	}
	if s, err := g.Stats(); err != nil || s.Pids < 3 {
		t.Errorf("host Stats = %+v, %v; want at least the 2 sleeps and the fork thread", s, err)
	}

	// Exec.Kill kills the background sleep too, and spares the agent,
	// whose fork thread is still in e1.
	a.call("kill 1")
	if got := a.call("pids 1"); got != "" {
		t.Errorf("pids after Kill: %q", got)
	}
	for _, p := range pids {
		waitFor(t, fmt.Sprintf("process %d to die", p), func() bool { return gone(p) })
	}
	if st := a.call("wait 1"); st != "signal: killed" {
		t.Errorf("shell ended with %q, want killed", st)
	}
	if _, err := a.send("remove 1"); err == nil || !strings.Contains(err.Error(), "ParkThread") {
		t.Errorf("remove with the fork thread inside: %v", err)
	}
	a.call("park")
	a.call("remove 1")
	if exists(filepath.Join(DefaultRoot, "pids", DefaultParent, g.ID(), "user", "e1")) {
		t.Error("e1 still exists after Remove")
	}

	// Execution 2: exceeding the memory limit gets the process OOM-killed,
	// not the agent.
	a.call("resetpeak")
	a.call("alloc 2 256")
	if st := a.call("wait 2"); st != "signal: killed" {
		t.Errorf("memory hog ended with %q, want killed by the OOM killer; its stderr:\n%s", st, a.stderr.String())
	}
	s, err := g.Stats()
	if err != nil {
		t.Fatal(err)
	}
	// The peak may pass the limit by the pages the kernel charges in a
	// batch before it reclaims or kills.
	if s.OOMKills != 1 || s.MemoryPeak > 64<<20+256<<10 || s.MemoryPeak < 32<<20 {
		t.Errorf("host Stats after the OOM kill = %+v; want 1 OOM kill and a peak near 64 MiB", s)
	}
	t.Logf("after the OOM kill: %+v", s)
	f := strings.Fields(a.call("stats"))
	if f[2] != "1" || f[1] != strconv.FormatInt(s.MemoryPeak, 10) {
		t.Errorf("agent stats %v disagree with host stats %+v", f, s)
	}
	a.call("park")
	a.call("remove 2")

	// Execution 3: the pids limit (48 for the user subtree, the fork thread
	// included) stops a fork loop.
	a.call("exec 3 for i in $(seq 80); do sleep 30 & done 2>/dev/null; wait")
	var n int
	waitFor(t, "the fork loop to stop", func() bool {
		before := len(pidsOf(a.call("pids 3")))
		time.Sleep(300 * time.Millisecond)
		n = len(pidsOf(a.call("pids 3")))
		return n == before && n > 10
	})
	t.Logf("fork loop stopped at %d processes", n)
	if s, _ := g.Stats(); n > 47 || s.Pids > 48 {
		t.Errorf("%d processes in e3 and pids.current %d; the limit is 48", n, s.Pids)
	}
	if n < 40 {
		t.Errorf("only %d processes in e3: the loop should reach the pids limit", n)
	}
	a.call("kill 3")
	a.call("wait 3")
	a.call("park")
	a.call("remove 3")

	// Execution 4: a busy loop gets a quarter of a CPU.
	before, _ := g.Stats()
	a.call("exec 4 while :; do :; done")
	time.Sleep(time.Second)
	a.call("kill 4")
	a.call("wait 4")
	after, _ := g.Stats()
	used := after.CPUUsage - before.CPUUsage
	t.Logf("busy loop used %v of CPU in 1s", used)
	if used > 450*time.Millisecond || used < 100*time.Millisecond {
		t.Errorf("a busy loop used %v of CPU in 1s at 0.25 CPUs", used)
	}
	a.call("park")
	a.call("remove 4")

	// Destroy kills the agent too.
	if err := g.Destroy(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the agent to die", func() bool { return gone(agentPid) })
}

// forkingGroup returns a real v1 group whose processes keep forking, once
// it holds a few, and their pids.
func forkingGroup(t *testing.T) (*Group, []int) {
	t.Helper()
	m := realV1(t, "")
	g := createReal(t, m, cove.Limits{MemoryBytes: 64 << 20, CPUs: 1, Pids: 64}, 0)
	cmd := exec.Command("/bin/sh", "-c", "read x; while :; do sleep 30 & sleep 0.01; done")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	if err := g.AddAgent(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	io.WriteString(stdin, "go\n")
	var pids []int
	waitFor(t, "a few processes", func() bool {
		pids, _ = procsInTrees(g.dirs())
		return len(pids) >= 5
	})
	return g, pids
}

// TestKillV1 kills a group whose processes keep forking.
func TestKillV1(t *testing.T) {
	g, pids := forkingGroup(t)
	start := time.Now()
	if err := g.Kill(); err != nil {
		t.Fatal(err)
	}
	t.Logf("Kill of %d+ forking processes took %v", len(pids), time.Since(start))
	if left, _ := procsInTrees(g.dirs()); len(left) != 0 {
		t.Errorf("processes left after Kill: %v", left)
	}
	for _, p := range pids {
		if !gone(p) {
			t.Errorf("process %d survived", p)
		}
	}
	if data, _ := os.ReadFile(filepath.Join(DefaultRoot, "freezer", DefaultParent, g.ID(), "freezer.state")); strings.TrimSpace(string(data)) != "THAWED" {
		t.Errorf("freezer state %q after Kill", data)
	}
}

// TestDestroyLiveV1 destroys a group whose processes are still running
// and forking: the first removal is refused, and Destroy kills them and
// removes every cgroup.
func TestDestroyLiveV1(t *testing.T) {
	g, pids := forkingGroup(t)
	if err := g.Destroy(); err != nil {
		t.Fatal(err)
	}
	for _, p := range pids {
		if !gone(p) {
			t.Errorf("process %d survived", p)
		}
	}
	for _, d := range g.dirs() {
		if exists(d) {
			t.Errorf("cgroup %s left after Destroy", d)
		}
	}
}

// TestFavorMount checks that New mounts the favordynmods hierarchy once.
func TestFavorMount(t *testing.T) {
	runDir := favorRunDir(t)
	target := filepath.Join(runDir, favorMountDir)
	realV1(t, runDir)
	realV1(t, runDir)
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	mounts, err := parseMountInfo(f)
	if err != nil {
		t.Fatal(err)
	}
	var found []mount
	for _, mt := range mounts {
		if mt.point == target {
			found = append(found, mt)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d mounts at %s, want 1", len(found), target)
	}
	if mt := found[0]; mt.fstype != "cgroup" || !mt.hasSuperOpt("favordynmods") || !mt.hasSuperOpt("name=cove") {
		t.Errorf("mount at %s = %+v", target, mt)
	}
}

// BenchmarkAddAgent measures cgroup joins with the favordynmods hierarchy
// mounted: moving a whole process into the agent cgroups of every v1
// hierarchy (AddAgent), and moving the fork thread into a new execution's
// pids cgroup (EnterThread, once per execution). "idle" waits 60 ms
// before each join, the pause after which joins used to wait for an RCU
// grace period.
func BenchmarkAddAgent(b *testing.B) {
	m := realV1(b, favorRunDir(b))
	g1 := createReal(b, m, cove.Limits{MemoryBytes: 64 << 20, CPUs: 1, Pids: 64}, 0)
	g2 := createReal(b, m, cove.Limits{MemoryBytes: 64 << 20, CPUs: 1, Pids: 64}, 0)
	cmd := exec.Command("sleep", "1000")
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	joins := len(m.hiers) // AddAgent writes one cgroup.procs per hierarchy
	for _, idle := range []time.Duration{0, 60 * time.Millisecond} {
		name := "busy"
		if idle > 0 {
			name = "idle"
		}
		b.Run("process/"+name, func(b *testing.B) {
			var total time.Duration
			for i := 0; i < b.N; i++ {
				time.Sleep(idle)
				g := g1
				if i%2 == 1 {
					g = g2
				}
				start := time.Now()
				if err := g.AddAgent(cmd.Process.Pid); err != nil {
					b.Fatal(err)
				}
				total += time.Since(start)
			}
			b.ReportMetric(float64(total.Microseconds())/float64(b.N*joins), "µs/join")
			b.ReportMetric(0, "ns/op")
		})
		b.Run("thread/"+name, func(b *testing.B) {
			files, err := g1.AgentFiles()
			if err != nil {
				b.Fatal(err)
			}
			d, err := OpenDelegated(V1, files)
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			var total time.Duration
			onForkThread(func() {
				if err := d.PrepareForkThread(); err != nil {
					b.Fatal(err)
				}
				var execs [2]*Exec
				for i := range execs {
					if execs[i], err = d.NewExec(i); err != nil {
						b.Fatal(err)
					}
				}
				for i := 0; i < b.N; i++ {
					time.Sleep(idle)
					start := time.Now()
					if err := execs[i%2].EnterThread(); err != nil {
						b.Fatal(err)
					}
					total += time.Since(start)
				}
				d.ParkThread()
				for _, e := range execs {
					if err := e.Remove(); err != nil {
						b.Error(err)
					}
				}
			})
			b.ReportMetric(float64(total.Microseconds())/float64(b.N), "µs/join")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// TestCapPids: the parent of all sandboxes gets a bound on their
// processes and threads together, which applies to every sandbox below
// it whatever its own limit; a bound someone set there already stays.
func TestCapPids(t *testing.T) {
	skipUnlessRoot(t)
	m, err := New(Options{Parent: testID(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Skipf("no usable cgroups on this host: %v", err)
	}
	if m.Version() != V1 {
		t.Skipf("host has cgroup %v; this test covers v1", m.Version())
	}
	parent := filepath.Join(m.hiers[m.hierOf(ctrlPids)].mount, m.parent)
	t.Cleanup(func() { unix.Rmdir(parent) })
	if err := m.CapPids(40); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(parent, "pids.max")); err != nil || strings.TrimSpace(string(b)) != "40" {
		t.Fatalf("parent pids.max = %q, %v; want 40", b, err)
	}
	// A sandbox allowed 256 gets no more than the 40 of all of them.
	g := createReal(t, m, cove.Limits{MemoryBytes: 64 << 20, Pids: 256, CPUs: 1}, 0)
	cmd := exec.Command("/bin/sh", "-c", "for i in $(seq 60); do sleep 5 & done 2>/dev/null; wait")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := writeFile(filepath.Join(g.userDirOf(ctrlPids), "cgroup.procs"), strconv.Itoa(cmd.Process.Pid)); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	b, _ := os.ReadFile(filepath.Join(parent, "pids.current"))
	g.Kill()
	cmd.Wait()
	t.Logf("parent pids.current %s", b)
	if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err != nil || n > 40 {
		t.Errorf("pids.current of the parent %q, want at most 40", b)
	}
	// An existing bound is left as it is.
	if err := m.CapPids(1000); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(parent, "pids.max")); err != nil || strings.TrimSpace(string(b)) != "40" {
		t.Errorf("parent pids.max after a second cap = %q, %v; want 40 kept", b, err)
	}
}
