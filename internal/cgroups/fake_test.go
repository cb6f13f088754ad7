package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// fakeHost emulates cgroupfs on a plain directory tree: mkdir populates the
// control files the kernel would create, rmdir removes them first.
type fakeHost struct {
	t         *testing.T
	root      string
	mountinfo string
	version   Version
	hiers     map[string][]string // v1: mount point -> controllers
	noSwap    bool                // no memsw / memory.swap.max files
	// fault, when set, may break the files of a freshly made cgroup (to
	// test failures); it gets the directory.
	fault func(dir string)
}

// v1Layout describes the mounts of a fake v1 host: mount directory name ->
// controllers.
type v1Layout map[string][]string

// machineLayout is the layout of the build machines: every controller
// mounted on its own.
func machineLayout() v1Layout {
	return v1Layout{
		"cpu": {"cpu"}, "cpuacct": {"cpuacct"}, "cpuset": {"cpuset"}, "memory": {"memory"},
		"devices": {"devices"}, "freezer": {"freezer"}, "blkio": {"blkio"}, "pids": {"pids"},
	}
}

// newFakeV1 builds a v1 host with the given layout under a temporary root.
func newFakeV1(t *testing.T, layout v1Layout) *fakeHost {
	t.Helper()
	h := &fakeHost{t: t, root: t.TempDir(), version: V1, hiers: map[string][]string{}}
	lines := []string{fmt.Sprintf("31 23 0:28 / %s rw,relatime - tmpfs tmpfs rw,mode=755", escapeMount(h.root))}
	names := make([]string, 0, len(layout))
	for name := range layout {
		names = append(names, name)
	}
	slices.Sort(names)
	for i, name := range names {
		dir := filepath.Join(h.root, name)
		h.hiers[dir] = layout[name]
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		h.populate(dir, true)
		lines = append(lines, fmt.Sprintf("%d 31 0:%d / %s rw,nosuid,nodev,noexec,relatime - cgroup cgroup rw,%s",
			40+i, 40+i, escapeMount(dir), strings.Join(layout[name], ",")))
	}
	unified := filepath.Join(h.root, "unified")
	if err := os.Mkdir(unified, 0o755); err != nil {
		t.Fatal(err)
	}
	lines = append(lines, fmt.Sprintf("99 31 0:99 / %s rw,relatime - cgroup2 cgroup2 rw", escapeMount(unified)))
	h.writeMountInfo(lines)
	return h
}

// newFakeV2 builds a unified host whose root offers controllers.
func newFakeV2(t *testing.T, controllers string) *fakeHost {
	t.Helper()
	h := &fakeHost{t: t, root: t.TempDir(), version: V2}
	h.populate(h.root, true)
	if err := os.WriteFile(filepath.Join(h.root, "cgroup.controllers"), []byte(controllers+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.writeMountInfo([]string{fmt.Sprintf("30 23 0:27 / %s rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot", escapeMount(h.root))})
	return h
}

func (h *fakeHost) writeMountInfo(lines []string) {
	h.t.Helper()
	h.mountinfo = filepath.Join(h.t.TempDir(), "mountinfo")
	if err := os.WriteFile(h.mountinfo, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

// escapeMount escapes a path as mountinfo does.
func escapeMount(p string) string {
	return strings.NewReplacer(" ", `\040`, "\t", `\011`, "\n", `\012`, `\`, `\134`).Replace(p)
}

// hierarchyOf returns the v1 mount dir is in, and its controllers.
func (h *fakeHost) hierarchyOf(dir string) []string {
	for mnt, ctrls := range h.hiers {
		if dir == mnt || strings.HasPrefix(dir, mnt+"/") {
			return ctrls
		}
	}
	h.t.Fatalf("fake mkdir outside every hierarchy: %s", dir)
	return nil
}

// populate creates the control files of cgroup dir.
func (h *fakeHost) populate(dir string, isRoot bool) {
	h.t.Helper()
	files := map[string]string{"cgroup.procs": ""}
	if h.version == V2 {
		files["cgroup.subtree_control"] = ""
		files["cgroup.controllers"] = "memory pids cpu\n"
		if !isRoot {
			files["cgroup.kill"] = ""
			files["cgroup.freeze"] = "0\n"
			files["cgroup.events"] = "populated 0\nfrozen 0\n"
			files["memory.max"] = "max\n"
			files["memory.current"] = "0\n"
			files["memory.peak"] = "0\n"
			files["memory.events"] = "low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\noom_group_kill 0\n"
			files["pids.max"] = "max\n"
			files["pids.current"] = "0\n"
			files["cpu.max"] = "max 100000\n"
			files["cpu.stat"] = "usage_usec 0\nuser_usec 0\nsystem_usec 0\n"
			if !h.noSwap {
				files["memory.swap.max"] = "max\n"
			}
		}
	} else {
		files["tasks"] = ""
		files["notify_on_release"] = "0\n"
		for _, c := range h.hierarchyOf(dir) {
			switch c {
			case ctrlMemory:
				files["memory.limit_in_bytes"] = "9223372036854771712\n"
				files["memory.usage_in_bytes"] = "0\n"
				files["memory.max_usage_in_bytes"] = "0\n"
				files["memory.oom_control"] = "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n"
				files["memory.swappiness"] = "60\n"
				if !h.noSwap {
					files["memory.memsw.limit_in_bytes"] = "9223372036854771712\n"
				}
			case ctrlPids:
				if !isRoot {
					files["pids.max"] = "max\n"
				}
				files["pids.current"] = "0\n"
			case ctrlCPU:
				files["cpu.cfs_period_us"] = "100000\n"
				files["cpu.cfs_quota_us"] = "-1\n"
			case ctrlCPUAcct:
				files["cpuacct.usage"] = "0\n"
			case ctrlFreezer:
				if !isRoot {
					files["freezer.state"] = "THAWED\n"
				}
			}
		}
	}
	for name, val := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(val), 0o644); err != nil {
			h.t.Fatal(err)
		}
	}
}

// manager returns a Manager on the fake host with the fake mkdir and
// rmdir.
func (h *fakeHost) manager() *Manager {
	h.t.Helper()
	m, err := New(Options{Root: h.root, MountInfo: h.mountinfo})
	if err != nil {
		h.t.Fatalf("New: %v", err)
	}
	m.ops = fsOps{mkdir: h.mkdir, rmdir: h.rmdir}
	return m
}

func (h *fakeHost) mkdir(path string) error {
	if err := os.Mkdir(path, 0o755); err != nil {
		return err
	}
	h.populate(path, false)
	if h.fault != nil {
		h.fault(path)
	}
	return nil
}

// rmdir removes a cgroup like the kernel: its control files go with it,
// but a child cgroup makes it busy.
func (h *fakeHost) rmdir(path string) error {
	entries, err := os.ReadDir(path)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() && !isBrokenFile(e) {
			return &os.PathError{Op: "rmdir", Path: path, Err: unix.EBUSY}
		}
	}
	for _, e := range entries {
		if err := os.Remove(filepath.Join(path, e.Name())); err != nil {
			return err
		}
	}
	if err := unix.Rmdir(path); err != nil {
		return &os.PathError{Op: "rmdir", Path: path, Err: err}
	}
	return nil
}

// read returns the trimmed contents of a file below the fake root.
func (h *fakeHost) read(rel string) string {
	h.t.Helper()
	data, err := os.ReadFile(filepath.Join(h.root, rel))
	if err != nil {
		h.t.Fatalf("reading %s: %v", rel, err)
	}
	return strings.TrimSpace(string(data))
}

// write sets a file below the fake root, as the kernel would update it.
func (h *fakeHost) write(rel, val string) {
	h.t.Helper()
	if err := os.WriteFile(filepath.Join(h.root, rel), []byte(val), 0o644); err != nil {
		h.t.Fatal(err)
	}
}

// owner returns the uid owning a path below the fake root.
func (h *fakeHost) owner(rel string) int {
	h.t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(h.root, rel), &st); err != nil {
		h.t.Fatalf("stat %s: %v", rel, err)
	}
	return int(st.Uid)
}

// exists reports whether a path below the fake root exists.
func (h *fakeHost) exists(rel string) bool {
	_, err := os.Lstat(filepath.Join(h.root, rel))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		h.t.Fatal(err)
	}
	return err == nil
}

// breakFile breaks the control file name of every new cgroup: "missing"
// removes it, "dir" replaces it with a directory, which no one, not even
// root, can open for writing.
func breakFile(name, how string) func(dir string) {
	return func(dir string) {
		p := filepath.Join(dir, name)
		if _, err := os.Lstat(p); err != nil {
			return
		}
		os.Remove(p)
		if how == "dir" {
			os.Mkdir(p, 0o755)
		}
	}
}

// isBrokenFile reports whether a directory entry is a control file that
// breakFile turned into a directory (cgroup names in these tests have no
// dots; control file names all do).
func isBrokenFile(e os.DirEntry) bool { return e.IsDir() && strings.Contains(e.Name(), ".") }
