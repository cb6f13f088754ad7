package cgroups

import (
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	cove "github.com/cove-sandbox/cove"
	"golang.org/x/sys/unix"
)

// testAgentIDs returns the uid and gid to delegate to: a high, random
// range when root (so that chowns are visible and collide with nothing),
// the caller's own ids otherwise.
func testAgentIDs() (uid, gid int) {
	if os.Geteuid() != 0 {
		return os.Getuid(), os.Getgid()
	}
	id := 200000 + rand.IntN(1000)*65536
	return id, id
}

// fakePid is the pid the fake-tree tests write: above the kernel's
// PID_MAX_LIMIT, so that no real process can ever be signalled by mistake.
const fakePid = 1 << 30

// testLimits are the limits the fake-tree tests write.
func testLimits() cove.Limits {
	return cove.Limits{MemoryBytes: 64 << 20, CPUs: 0.5, Pids: 100}
}

func TestParseMountInfo(t *testing.T) {
	t.Parallel()
	in := "30 23 0:27 / /sys/fs/cgroup rw,nosuid shared:4 master:1 - cgroup2 cgroup2 rw,nsdelegate\n" +
		"32 31 0:29 / /a\\040b ro,relatime - cgroup none rw,cpu,cpuacct\n"
	got, err := parseMountInfo(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("got %d mounts, want 2", len(got))
	}
	if got[0].point != "/sys/fs/cgroup" || got[0].fstype != "cgroup2" || !got[0].hasSuperOpt("nsdelegate") || got[0].readOnly() {
		t.Errorf("first mount = %+v", got[0])
	}
	if got[1].point != "/a b" || !got[1].hasSuperOpt("cpuacct") || !got[1].readOnly() {
		t.Errorf("second mount = %+v", got[1])
	}
	if _, err := parseMountInfo(strings.NewReader("1 2 3 4\n")); err == nil {
		t.Error("a malformed line parsed")
	}
}

func TestNewDetects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		host      func(t *testing.T) *fakeHost
		want      Version
		wantHiers [][]string // v1 controllers per hierarchy, in AgentFiles order
		wantErr   string
	}{
		{
			name:      "v1 every controller separate",
			host:      func(t *testing.T) *fakeHost { return newFakeV1(t, machineLayout()) },
			want:      V1,
			wantHiers: [][]string{{"memory"}, {"pids"}, {"cpu"}, {"cpuacct"}, {"freezer"}},
		},
		{
			name: "v1 cpu and cpuacct together, no freezer",
			host: func(t *testing.T) *fakeHost {
				return newFakeV1(t, v1Layout{"cpu,cpuacct": {"cpu", "cpuacct"}, "memory": {"memory"}, "pids": {"pids"}})
			},
			want:      V1,
			wantHiers: [][]string{{"memory"}, {"pids"}, {"cpu", "cpuacct"}},
		},
		{
			name:    "v1 without memory",
			host:    func(t *testing.T) *fakeHost { return newFakeV1(t, v1Layout{"cpu": {"cpu"}, "pids": {"pids"}}) },
			wantErr: "cgroup memory controller not found: cove needs the memory, pids and cpu controllers (cgroup v1 or v2)",
		},
		{
			name:    "v1 without pids",
			host:    func(t *testing.T) *fakeHost { return newFakeV1(t, v1Layout{"cpu": {"cpu"}, "memory": {"memory"}}) },
			wantErr: "cgroup pids controller not found",
		},
		{
			name: "v2",
			host: func(t *testing.T) *fakeHost { return newFakeV2(t, "cpuset cpu io memory hugetlb pids rdma misc") },
			want: V2,
		},
		{
			name:    "v2 without pids",
			host:    func(t *testing.T) *fakeHost { return newFakeV2(t, "cpuset cpu io memory") },
			wantErr: "cgroup pids controller not found in cgroup v2",
		},
		{
			name: "nothing mounted",
			host: func(t *testing.T) *fakeHost {
				h := &fakeHost{t: t, root: t.TempDir()}
				h.writeMountInfo([]string{"23 1 0:21 / /sys rw - sysfs sysfs rw"})
				return h
			},
			wantErr: "cgroup memory controller not found",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := tt.host(t)
			m, err := New(Options{Root: h.root, MountInfo: h.mountinfo})
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("New succeeded with version %v", m.Version())
				}
				if cove.ErrorCode(err) != cove.CodeUnavailable || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("New error = %v (code %s), want unavailable %q", err, cove.ErrorCode(err), tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Version() != tt.want {
				t.Fatalf("version %v, want %v", m.Version(), tt.want)
			}
			var got [][]string
			for _, hr := range m.hiers {
				got = append(got, hr.controllers)
			}
			if len(got) != len(tt.wantHiers) {
				t.Fatalf("hierarchies %v, want %v", got, tt.wantHiers)
			}
			for i := range got {
				if strings.Join(got[i], ",") != strings.Join(tt.wantHiers[i], ",") {
					t.Fatalf("hierarchies %v, want %v", got, tt.wantHiers)
				}
			}
		})
	}
}

func TestNewOptions(t *testing.T) {
	t.Parallel()
	h := newFakeV1(t, machineLayout())
	for _, parent := range []string{"/abs", "../up", "a/../b"} {
		_, err := New(Options{Root: h.root, MountInfo: h.mountinfo, Parent: parent})
		if cove.ErrorCode(err) != cove.CodeInvalid {
			t.Errorf("parent %q: error %v, want invalid", parent, err)
		}
	}
	_, err := New(Options{Root: h.root, MountInfo: filepath.Join(h.root, "missing")})
	if cove.ErrorCode(err) != cove.CodeUnavailable {
		t.Errorf("missing mountinfo: error %v, want unavailable", err)
	}
	// A read-only memory hierarchy cannot hold limits.
	data, _ := os.ReadFile(h.mountinfo)
	ro := strings.Replace(string(data), escapeMount(filepath.Join(h.root, "memory"))+" rw,", escapeMount(filepath.Join(h.root, "memory"))+" ro,", 1)
	os.WriteFile(h.mountinfo, []byte(ro), 0o644)
	_, err = New(Options{Root: h.root, MountInfo: h.mountinfo})
	if cove.ErrorCode(err) != cove.CodeUnavailable || !strings.Contains(err.Error(), "read-only") {
		t.Errorf("read-only memory: error %v, want unavailable read-only", err)
	}
}

// checkOwner fails unless path below the fake root is owned by uid
// (want true) or by someone else (want false). The second check means
// nothing when the test runs as the agent uid itself.
func checkOwner(t *testing.T, h *fakeHost, rel string, uid int, want bool) {
	t.Helper()
	if !want && uid == os.Getuid() {
		return
	}
	if got := h.owner(rel); (got == uid) != want {
		t.Errorf("%s owned by %d; want delegated=%v (agent uid %d)", rel, got, want, uid)
	}
}

// sameFile fails unless f is the directory below the fake root at rel.
func sameFile(t *testing.T, h *fakeHost, f *os.File, rel string) {
	t.Helper()
	var a, b unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &a); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(filepath.Join(h.root, rel), &b); err != nil {
		t.Fatal(err)
	}
	if a.Ino != b.Ino || a.Dev != b.Dev {
		t.Errorf("file %s is not %s", f.Name(), rel)
	}
}

func TestCreateV1Fake(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		layout v1Layout
		noSwap bool
		files  []string // AgentFiles, by mount directory
	}{
		{"separate", machineLayout(), false, []string{"memory", "pids", "cpu", "cpuacct", "freezer"}},
		{"cpu,cpuacct and no swap accounting", v1Layout{"cpu,cpuacct": {"cpu", "cpuacct"}, "memory": {"memory"}, "pids": {"pids"}}, true, []string{"memory", "pids", "cpu,cpuacct"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newFakeV1(t, tt.layout)
			h.noSwap = tt.noSwap
			m := h.manager()
			uid, gid := testAgentIDs()
			g, err := m.Create("sb1", testLimits(), uid, gid)
			if err != nil {
				t.Fatal(err)
			}
			cpu := tt.files[2]
			want := map[string]string{
				"memory/cove/sb1/user/memory.limit_in_bytes": "67108864",
				"memory/cove/sb1/user/memory.swappiness":     "0",
				"pids/cove/sb1/user/pids.max":                "100",
				cpu + "/cove/sb1/user/cpu.cfs_period_us":     "100000",
				cpu + "/cove/sb1/user/cpu.cfs_quota_us":      "50000",
				// The agent's own cgroups carry no limits but the CPU,
				// which bounds the agent's work for the sandbox too.
				"memory/cove/sb1/memory.limit_in_bytes": "9223372036854771712",
				"pids/cove/sb1/pids.max":                "max",
				cpu + "/cove/sb1/cpu.cfs_quota_us":      "50000",
				cpu + "/cove/sb1/cpu.cfs_period_us":     "100000",
			}
			if !tt.noSwap {
				want["memory/cove/sb1/user/memory.memsw.limit_in_bytes"] = "67108864"
			} else if h.exists("memory/cove/sb1/user/memory.memsw.limit_in_bytes") {
				t.Error("memsw file appeared without swap accounting")
			}
			for rel, v := range want {
				if got := h.read(rel); got != v {
					t.Errorf("%s = %q, want %q", rel, got, v)
				}
			}

			for _, mnt := range tt.files {
				checkOwner(t, h, mnt+"/cove/sb1/user/tasks", uid, true)
				checkOwner(t, h, mnt+"/cove/sb1/user/cgroup.procs", uid, true)
				checkOwner(t, h, mnt+"/cove/sb1/tasks", uid, false)
				checkOwner(t, h, mnt+"/cove/sb1/user/notify_on_release", uid, false)
			}
			checkOwner(t, h, "pids/cove/sb1/user", uid, true)
			checkOwner(t, h, "memory/cove/sb1/user", uid, false)
			checkOwner(t, h, "memory/cove/sb1/user/memory.max_usage_in_bytes", uid, true)
			for _, limit := range []string{"memory/cove/sb1/user/memory.limit_in_bytes", "memory/cove/sb1/user/memory.swappiness",
				"pids/cove/sb1/user/pids.max", cpu + "/cove/sb1/user/cpu.cfs_quota_us", cpu + "/cove/sb1/user/cpu.cfs_period_us"} {
				checkOwner(t, h, limit, uid, false)
			}

			if err := g.AddAgent(fakePid); err != nil {
				t.Fatal(err)
			}
			for _, mnt := range tt.files {
				if got := h.read(mnt + "/cove/sb1/cgroup.procs"); got != strconv.Itoa(fakePid) {
					t.Errorf("%s agent cgroup.procs = %q", mnt, got)
				}
				h.write(mnt+"/cove/sb1/cgroup.procs", "")
			}

			files, err := g.AgentFiles()
			if err != nil {
				t.Fatal(err)
			}
			if len(files) != len(tt.files) {
				t.Fatalf("%d agent files, want %d", len(files), len(tt.files))
			}
			for i, f := range files {
				sameFile(t, h, f, tt.files[i]+"/cove/sb1/user")
				f.Close()
			}

			// Cgroups below the ones Create made (an execution's that
			// was left behind) make Destroy walk the tree.
			for _, rel := range []string{"pids/cove/sb1/user/e3", "memory/cove/sb1/user/e4", "memory/cove/sb1/user/e4/deeper"} {
				if err := h.mkdir(filepath.Join(h.root, rel)); err != nil {
					t.Fatal(err)
				}
			}
			if err := g.Kill(); err != nil {
				t.Fatal(err)
			}
			if h.exists("freezer") && h.read("freezer/cove/sb1/freezer.state") != "THAWED" {
				t.Error("Kill left the group frozen")
			}
			if err := g.Destroy(); err != nil {
				t.Fatal(err)
			}
			for _, mnt := range tt.files {
				if h.exists(mnt + "/cove/sb1") {
					t.Errorf("%s/cove/sb1 left behind", mnt)
				}
				if !h.exists(mnt + "/cove") {
					t.Errorf("%s/cove removed", mnt)
				}
			}
			if err := g.Destroy(); err != nil {
				t.Errorf("second Destroy: %v", err)
			}
		})
	}
}

func TestCreateV2Fake(t *testing.T) {
	t.Parallel()
	h := newFakeV2(t, "cpuset cpu io memory hugetlb pids rdma misc")
	m := h.manager()
	uid, gid := testAgentIDs()
	g, err := m.Create("sb2", testLimits(), uid, gid)
	if err != nil {
		t.Fatal(err)
	}
	for rel, v := range map[string]string{
		"cgroup.subtree_control":                "+memory +pids +cpu",
		"cove/cgroup.subtree_control":           "+memory +pids +cpu",
		"cove/sb2/cgroup.subtree_control":       "+memory +pids +cpu",
		"cove/sb2/user/cgroup.subtree_control":  "+memory +pids +cpu",
		"cove/sb2/agent/cgroup.subtree_control": "",
		"cove/sb2/user/memory.max":              "67108864",
		"cove/sb2/user/memory.swap.max":         "0",
		"cove/sb2/user/pids.max":                "100",
		"cove/sb2/user/cpu.max":                 "50000 100000",
		// The agent's own cgroups carry no limits, but the sandbox's
		// CPU limit bounds the agent's work for it too.
		"cove/sb2/agent/memory.max": "max",
		"cove/sb2/agent/pids.max":   "max",
		"cove/sb2/agent/cpu.max":    "max 100000",
		"cove/sb2/memory.max":       "max",
		"cove/sb2/cpu.max":          "50000 100000",
	} {
		if got := h.read(rel); got != v {
			t.Errorf("%s = %q, want %q", rel, got, v)
		}
	}
	for _, rel := range []string{"cove/sb2/user", "cove/sb2/user/cgroup.procs", "cove/sb2/user/cgroup.kill", "cove/sb2/user/memory.peak", "cove/sb2/cgroup.procs"} {
		checkOwner(t, h, rel, uid, true)
	}
	for _, rel := range []string{"cove/sb2", "cove/sb2/agent", "cove/sb2/agent/cgroup.procs", "cove/sb2/cgroup.subtree_control",
		"cove/sb2/user/memory.max", "cove/sb2/user/memory.swap.max", "cove/sb2/user/pids.max", "cove/sb2/user/cpu.max", "cove/sb2/user/cgroup.subtree_control", "cove/sb2/cpu.max"} {
		checkOwner(t, h, rel, uid, false)
	}

	if err := g.AddAgent(fakePid); err != nil {
		t.Fatal(err)
	}
	if got := h.read("cove/sb2/agent/cgroup.procs"); got != strconv.Itoa(fakePid) {
		t.Errorf("agent/cgroup.procs = %q", got)
	}
	h.write("cove/sb2/agent/cgroup.procs", "")
	files, err := g.AgentFiles()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 {
		t.Fatalf("%d agent files, want 1", len(files))
	}
	sameFile(t, h, files[0], "cove/sb2/user")
	files[0].Close()

	if err := g.Kill(); err != nil {
		t.Fatal(err)
	}
	if got := h.read("cove/sb2/cgroup.kill"); got != "1" {
		t.Errorf("cgroup.kill = %q after Kill, want 1", got)
	}
	if err := g.Destroy(); err != nil {
		t.Fatal(err)
	}
	if h.exists("cove/sb2") || !h.exists("cove") {
		t.Error("Destroy did not remove exactly the sandbox's cgroups")
	}
}

func TestCreateV2KeepsEnabledControllers(t *testing.T) {
	t.Parallel()
	h := newFakeV2(t, "cpuset cpu io memory pids")
	h.write("cgroup.subtree_control", "cpuset cpu io memory pids\n")
	m := h.manager()
	uid, gid := testAgentIDs()
	g, err := m.Create("sb", testLimits(), uid, gid)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Destroy()
	if got := h.read("cgroup.subtree_control"); got != "cpuset cpu io memory pids" {
		t.Errorf("root subtree_control rewritten to %q", got)
	}
}

func TestCreateFailsClosed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		version   Version
		file, how string
	}{
		{V1, "memory.limit_in_bytes", "dir"},
		{V1, "memory.memsw.limit_in_bytes", "dir"},
		{V1, "pids.max", "missing"},
		{V1, "cpu.cfs_period_us", "missing"},
		{V1, "cpu.cfs_quota_us", "dir"},
		{V1, "memory.max_usage_in_bytes", "missing"}, // delegation fails: still nothing left
		{V2, "memory.max", "dir"},
		{V2, "memory.swap.max", "dir"},
		{V2, "pids.max", "missing"},
		{V2, "cpu.max", "dir"},
		{V2, "cgroup.subtree_control", "dir"},
		{V2, "cgroup.procs", "missing"},
	}
	for _, tt := range tests {
		t.Run(tt.version.String()+" "+tt.file+" "+tt.how, func(t *testing.T) {
			t.Parallel()
			var h *fakeHost
			if tt.version == V1 {
				h = newFakeV1(t, machineLayout())
			} else {
				h = newFakeV2(t, "cpu memory pids")
			}
			m := h.manager()
			h.fault = breakFile(tt.file, tt.how)
			uid, gid := testAgentIDs()
			g, err := m.Create("sb", testLimits(), uid, gid)
			if err == nil {
				g.Destroy()
				t.Fatal("Create succeeded")
			}
			if cove.ErrorCode(err) != cove.CodeUnavailable || !strings.Contains(err.Error(), tt.file) {
				t.Errorf("error %q (code %s), want unavailable naming %s", err, cove.ErrorCode(err), tt.file)
			}
			for _, p := range m.parentDirs() {
				if _, err := os.Lstat(filepath.Join(p, "sb")); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("%s/sb left behind", p)
				}
			}
		})
	}
}

func TestCreateRejects(t *testing.T) {
	t.Parallel()
	h := newFakeV1(t, machineLayout())
	m := h.manager()
	uid, gid := testAgentIDs()
	g, err := m.Create("taken", testLimits(), uid, gid)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Destroy()
	tests := []struct {
		name string
		id   string
		l    cove.Limits
		uid  int
		want cove.Code
	}{
		{"exists", "taken", testLimits(), uid, cove.CodeConflict},
		{"empty id", "", testLimits(), uid, cove.CodeInvalid},
		{"dot dot", "..", testLimits(), uid, cove.CodeInvalid},
		{"slash", "a/b", testLimits(), uid, cove.CodeInvalid},
		{"newline", "a\nb", testLimits(), uid, cove.CodeInvalid},
		{"no memory limit", "x", cove.Limits{CPUs: 1, Pids: 10}, uid, cove.CodeInvalid},
		{"no pids limit", "x", cove.Limits{CPUs: 1, MemoryBytes: 1 << 30}, uid, cove.CodeInvalid},
		{"no cpu limit", "x", cove.Limits{Pids: 10, MemoryBytes: 1 << 30}, uid, cove.CodeInvalid},
		{"negative uid", "x", testLimits(), -1, cove.CodeInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := m.Create(tt.id, tt.l, tt.uid, gid)
			if cove.ErrorCode(err) != tt.want {
				t.Errorf("error %v, want code %s", err, tt.want)
			}
		})
	}
	// The conflicting Create must not have removed the existing group.
	if h.read("memory/cove/taken/user/memory.limit_in_bytes") != "67108864" {
		t.Error("a conflicting Create damaged the existing group")
	}
}

func TestOpenList(t *testing.T) {
	t.Parallel()
	for _, v := range []Version{V1, V2} {
		t.Run(v.String(), func(t *testing.T) {
			t.Parallel()
			var h *fakeHost
			if v == V1 {
				h = newFakeV1(t, machineLayout())
			} else {
				h = newFakeV2(t, "cpu memory pids")
			}
			m := h.manager()
			if ids, err := m.List(); err != nil || len(ids) != 0 {
				t.Fatalf("List before any = %v, %v", ids, err)
			}
			uid, gid := testAgentIDs()
			for _, id := range []string{"b", "a"} {
				if _, err := m.Create(id, testLimits(), uid, gid); err != nil {
					t.Fatal(err)
				}
			}
			ids, err := m.List()
			if err != nil || strings.Join(ids, ",") != "a,b" {
				t.Fatalf("List = %v, %v; want a,b", ids, err)
			}
			g, err := m.Open("a")
			if err != nil {
				t.Fatal(err)
			}
			if g.ID() != "a" {
				t.Errorf("ID = %q", g.ID())
			}
			if _, err := m.Open("c"); cove.ErrorCode(err) != cove.CodeNotFound {
				t.Errorf("Open of a missing group: %v, want not_found", err)
			}
			for _, id := range ids {
				g, _ := m.Open(id)
				if err := g.Destroy(); err != nil {
					t.Fatal(err)
				}
			}
			if ids, err := m.List(); err != nil || len(ids) != 0 {
				t.Fatalf("List after Destroy = %v, %v", ids, err)
			}
		})
	}
}

func TestStatsFake(t *testing.T) {
	t.Parallel()
	t.Run("v1", func(t *testing.T) {
		t.Parallel()
		h := newFakeV1(t, machineLayout())
		g, err := h.manager().Create("s", testLimits(), os.Getuid(), os.Getgid())
		if err != nil {
			t.Fatal(err)
		}
		h.write("memory/cove/s/user/memory.usage_in_bytes", "1000\n")
		h.write("memory/cove/s/user/memory.max_usage_in_bytes", "5000\n")
		h.write("memory/cove/s/user/memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
		h.write("pids/cove/s/user/pids.current", "7\n")
		h.write("cpuacct/cove/s/user/cpuacct.usage", "1500000000\n")
		got, err := g.Stats()
		if err != nil {
			t.Fatal(err)
		}
		want := Stats{MemoryCurrent: 1000, MemoryPeak: 5000, OOMKills: 2, CPUUsage: 1500 * time.Millisecond, Pids: 7}
		if got != want {
			t.Errorf("Stats = %+v, want %+v", got, want)
		}
	})
	t.Run("v1 without cpuacct", func(t *testing.T) {
		t.Parallel()
		h := newFakeV1(t, v1Layout{"cpu": {"cpu"}, "memory": {"memory"}, "pids": {"pids"}})
		g, err := h.manager().Create("s", testLimits(), os.Getuid(), os.Getgid())
		if err != nil {
			t.Fatal(err)
		}
		got, err := g.Stats()
		if err != nil || got.CPUUsage != 0 {
			t.Errorf("Stats = %+v, %v", got, err)
		}
	})
	t.Run("v2", func(t *testing.T) {
		t.Parallel()
		h := newFakeV2(t, "cpu memory pids")
		g, err := h.manager().Create("s", testLimits(), os.Getuid(), os.Getgid())
		if err != nil {
			t.Fatal(err)
		}
		h.write("cove/s/user/memory.current", "1000\n")
		h.write("cove/s/user/memory.peak", "5000\n")
		h.write("cove/s/user/memory.events", "low 0\nhigh 0\nmax 9\noom 3\noom_kill 3\noom_group_kill 0\n")
		h.write("cove/s/user/pids.current", "7\n")
		h.write("cove/s/user/cpu.stat", "usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n")
		got, err := g.Stats()
		if err != nil {
			t.Fatal(err)
		}
		want := Stats{MemoryCurrent: 1000, MemoryPeak: 5000, OOMKills: 3, CPUUsage: 2500 * time.Millisecond, Pids: 7}
		if got != want {
			t.Errorf("Stats = %+v, want %+v", got, want)
		}
		h.write("cove/s/user/memory.current", "lots\n")
		if _, err := g.Stats(); err == nil || !strings.Contains(err.Error(), "memory.current") {
			t.Errorf("Stats of a garbled file: %v", err)
		}
	})
}
