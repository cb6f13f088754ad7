package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	cove "github.com/cove-sandbox/cove"
	"golang.org/x/sys/unix"
)

// Version is the cgroup version a Manager drives.
type Version int

// The cgroup versions.
const (
	V1 Version = 1 // legacy hierarchies, one per controller (or per group of co-mounted controllers)
	V2 Version = 2 // the unified hierarchy
)

// String returns "v1" or "v2".
func (v Version) String() string {
	switch v {
	case V1:
		return "v1"
	case V2:
		return "v2"
	default:
		return "Version(" + strconv.Itoa(int(v)) + ")"
	}
}

// The controllers cove uses. memory, pids and cpu carry the limits and are
// required; cpuacct (CPU time on v1) and freezer (clean kills on v1) are
// used when present.
const (
	ctrlMemory  = "memory"
	ctrlPids    = "pids"
	ctrlCPU     = "cpu"
	ctrlCPUAcct = "cpuacct"
	ctrlFreezer = "freezer"
)

// v1Controllers lists the v1 controllers cove uses, in the order
// Group.AgentFiles returns their directories.
func v1Controllers() []string {
	return []string{ctrlMemory, ctrlPids, ctrlCPU, ctrlCPUAcct, ctrlFreezer}
}

// Names inside a sandbox's subtree.
const (
	userDir  = "user"  // the limited subtree of the user's processes
	agentDir = "agent" // the agent's leaf on v2
)

// Defaults of Options.
const (
	DefaultRoot      = "/sys/fs/cgroup"
	DefaultParent    = "cove"
	DefaultMountInfo = "/proc/self/mountinfo"
)

// cfsPeriod is the CPU bandwidth period cove uses, in microseconds.
const cfsPeriod = 100000

// Options configure a Manager. Every field is optional.
type Options struct {
	// Root is where the cgroup file systems are mounted (DefaultRoot).
	// Only cgroup mounts at or below Root are used.
	Root string
	// Parent is the directory, relative to each hierarchy's root, under
	// which cove creates one cgroup per sandbox (DefaultParent).
	Parent string
	// RunDir is where, on cgroup v1, New mounts a named hierarchy with the
	// favordynmods option (at RunDir/cgroup-favor), which makes cgroup
	// joins fast system-wide. "" does not mount it.
	RunDir string
	// MountInfo is the mountinfo file New detects the cgroup layout from
	// (DefaultMountInfo).
	MountInfo string
	// Logger receives diagnostics; nil discards them.
	Logger *slog.Logger
}

// hierarchy is one mounted v1 hierarchy that carries some of the
// controllers cove uses.
type hierarchy struct {
	mount       string
	controllers []string // in v1Controllers order
}

// has reports whether h carries controller c.
func (h hierarchy) has(c string) bool { return slices.Contains(h.controllers, c) }

// fsOps creates and removes cgroup directories. The real ones are plain
// mkdir and rmdir; tests replace them to emulate cgroupfs on a plain
// directory tree (where the kernel does not create the control files).
type fsOps struct {
	mkdir func(path string) error
	rmdir func(path string) error
}

// Manager creates and finds the cgroups of sandboxes. It is safe for
// concurrent use.
type Manager struct {
	version Version
	root    string
	parent  string
	hiers   []hierarchy // v1: in AgentFiles order
	log     *slog.Logger
	ops     fsOps
}

// New detects the cgroup layout from the mountinfo file and returns a
// Manager for it. It prefers cgroup v2 when Root is a cgroup2 mount; it
// uses the v1 hierarchies below Root otherwise. On v1 it also makes sure
// the favordynmods hierarchy is mounted (see Options.RunDir); failing to
// mount it only makes joins slower and is logged, not returned.
//
// Errors have code cove.CodeUnavailable when the host lacks what cove
// needs, cove.CodeInvalid for bad options.
func New(opts Options) (*Manager, error) {
	if opts.Root == "" {
		opts.Root = DefaultRoot
	}
	if opts.Parent == "" {
		opts.Parent = DefaultParent
	}
	if opts.MountInfo == "" {
		opts.MountInfo = DefaultMountInfo
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if !filepath.IsLocal(opts.Parent) || filepath.Clean(opts.Parent) != opts.Parent {
		return nil, cove.Errorf(cove.CodeInvalid, "invalid cgroup parent %q: use a clean relative path such as %q", opts.Parent, DefaultParent)
	}
	f, err := os.Open(opts.MountInfo)
	if err != nil {
		return nil, cove.Errorf(cove.CodeUnavailable, "cgroups: reading mount table: %w", err)
	}
	mounts, err := parseMountInfo(f)
	f.Close()
	if err != nil {
		return nil, cove.Errorf(cove.CodeUnavailable, "cgroups: parsing %s: %w", opts.MountInfo, err)
	}
	m := &Manager{
		root:   filepath.Clean(opts.Root),
		parent: opts.Parent,
		log:    log.With("component", "cgroups"),
		ops: fsOps{
			mkdir: func(path string) error { return os.Mkdir(path, 0o755) },
			rmdir: func(path string) error {
				if err := unix.Rmdir(path); err != nil {
					return &os.PathError{Op: "rmdir", Path: path, Err: err}
				}
				return nil
			},
		},
	}
	if err := m.detect(mounts); err != nil {
		return nil, err
	}
	if m.version == V1 && opts.RunDir != "" {
		if err := ensureFavorMount(opts.RunDir, m.log); err != nil {
			m.log.Warn("cgroup joins stay slow: cannot mount the favordynmods hierarchy", "dir", opts.RunDir, "err", err)
		}
	}
	m.log.Debug("cgroups detected", "version", m.version, "root", m.root, "hierarchies", len(m.hiers))
	return m, nil
}

// detect sets m.version and, on v1, m.hiers.
func (m *Manager) detect(mounts []mount) error {
	const need = "cove needs the memory, pids and cpu controllers (cgroup v1 or v2)"
	under := func(p string) bool {
		p = filepath.Clean(p)
		return p == m.root || strings.HasPrefix(p, m.root+"/")
	}
	for _, mt := range mounts {
		if mt.fstype != "cgroup2" || filepath.Clean(mt.point) != m.root {
			continue
		}
		data, err := os.ReadFile(filepath.Join(m.root, "cgroup.controllers"))
		if err != nil {
			return cove.Errorf(cove.CodeUnavailable, "cgroup v2 at %s: reading the available controllers: %w", m.root, err)
		}
		avail := strings.Fields(string(data))
		var missing []string
		for _, c := range []string{ctrlMemory, ctrlPids, ctrlCPU} {
			if !slices.Contains(avail, c) {
				missing = append(missing, c)
			}
		}
		if len(missing) > 0 {
			return cove.Errorf(cove.CodeUnavailable, "cgroup %s controller not found in cgroup v2 at %s: %s", strings.Join(missing, ", "), m.root, need)
		}
		if mt.readOnly() {
			return cove.Errorf(cove.CodeUnavailable, "cgroup v2 at %s is mounted read-only: %s", m.root, need)
		}
		m.version = V2
		return nil
	}

	byMount := map[string]int{} // mount point -> index in m.hiers
	for _, c := range v1Controllers() {
		for _, mt := range mounts {
			if mt.fstype != "cgroup" || !under(mt.point) || !mt.hasSuperOpt(c) {
				continue
			}
			if mt.readOnly() {
				return cove.Errorf(cove.CodeUnavailable, "cgroup %s controller at %s is mounted read-only: %s", c, mt.point, need)
			}
			i, ok := byMount[mt.point]
			if !ok {
				i = len(m.hiers)
				byMount[mt.point] = i
				m.hiers = append(m.hiers, hierarchy{mount: filepath.Clean(mt.point)})
			}
			m.hiers[i].controllers = append(m.hiers[i].controllers, c)
			break
		}
	}
	for _, c := range []string{ctrlMemory, ctrlPids, ctrlCPU} {
		if m.hierOf(c) < 0 {
			m.hiers = nil
			return cove.Errorf(cove.CodeUnavailable, "cgroup %s controller not found: %s", c, need)
		}
	}
	m.version = V1
	return nil
}

// hierOf returns the index of the v1 hierarchy that carries controller c,
// or -1.
func (m *Manager) hierOf(c string) int {
	return slices.IndexFunc(m.hiers, func(h hierarchy) bool { return h.has(c) })
}

// CapPids bounds the processes and threads of all sandboxes together at n,
// on the parent cgroup they share, unless the parent has a limit already
// (an operator's, or an earlier cove's): sandboxes at their own limits,
// enough of them, would otherwise take every process id of the host, and
// cove itself, outside the parent, could no longer start a thread.
func (m *Manager) CapPids(n int) error {
	var dir string
	if m.version == V2 {
		if err := enableControllers(m.root); err != nil {
			return err
		}
		if err := m.ensureParent(m.root, enableControllers); err != nil {
			return err
		}
		dir = filepath.Join(m.root, m.parent)
	} else {
		i := m.hierOf(ctrlPids)
		if i < 0 {
			return cove.Errorf(cove.CodeUnavailable, "no cgroup v1 hierarchy carries the pids controller")
		}
		if err := m.ensureParent(m.hiers[i].mount, nil); err != nil {
			return err
		}
		dir = filepath.Join(m.hiers[i].mount, m.parent)
	}
	path := filepath.Join(dir, "pids.max")
	cur, err := os.ReadFile(path)
	if err != nil {
		return cove.Errorf(cove.CodeUnavailable, "reading %s: %w", path, err)
	}
	if strings.TrimSpace(string(cur)) != "max" {
		return nil
	}
	return setLimit(path, strconv.Itoa(n))
}

// Version returns the cgroup version in use.
func (m *Manager) Version() Version { return m.version }

// checkID reports whether id is safe to use as a cgroup directory name: 1
// to 128 letters, digits, '.', '_' and '-', not starting with '.'.
func checkID(id string) error {
	if id == "" || len(id) > 128 || id[0] == '.' {
		return cove.Errorf(cove.CodeInvalid, "invalid sandbox id %q for a cgroup name", id)
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return cove.Errorf(cove.CodeInvalid, "invalid sandbox id %q for a cgroup name", id)
		}
	}
	return nil
}

// parentDirs returns the parent directory of the sandboxes in every
// hierarchy (v1) or in the unified hierarchy (v2).
func (m *Manager) parentDirs() []string {
	if m.version == V2 {
		return []string{filepath.Join(m.root, m.parent)}
	}
	dirs := make([]string, len(m.hiers))
	for i, h := range m.hiers {
		dirs[i] = filepath.Join(h.mount, m.parent)
	}
	return dirs
}

// Create creates the cgroups of sandbox id, writes limits l to its user
// subtree, and delegates that subtree to the agent, whose user namespace
// maps its root to agentUID and agentGID on the host. If any directory,
// limit or ownership cannot be set up, Create removes what it created and
// returns an error naming the file (cgroups fail closed).
//
// Errors have code cove.CodeInvalid for a bad id or limits, cove.CodeConflict
// when the sandbox's cgroup exists already, cove.CodeUnavailable when the
// host refuses a step.
func (m *Manager) Create(id string, l cove.Limits, agentUID, agentGID int) (*Group, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	if l.MemoryBytes <= 0 || l.Pids <= 0 || l.CPUs <= 0 {
		return nil, cove.Errorf(cove.CodeInvalid, "cgroup limits must all be set: memory %d, pids %d, cpus %g", l.MemoryBytes, l.Pids, l.CPUs)
	}
	if agentUID < 0 || agentGID < 0 {
		return nil, cove.Errorf(cove.CodeInvalid, "invalid agent uid %d or gid %d", agentUID, agentGID)
	}
	c := &creation{m: m}
	var err error
	if m.version == V2 {
		err = c.createV2(id, l, agentUID, agentGID)
	} else {
		err = c.createV1(id, l, agentUID, agentGID)
	}
	if err != nil {
		c.undo()
		return nil, err
	}
	m.log.Debug("cgroup created", "id", id, "memory", l.MemoryBytes, "pids", l.Pids, "cpus", l.CPUs)
	return &Group{m: m, id: id}, nil
}

// creation records the directories Create made, so that a failure removes
// them and nothing else.
type creation struct {
	m       *Manager
	created []string
}

// mkdir creates one cgroup directory and records it. An existing directory
// is an error wrapping fs.ErrExist.
func (c *creation) mkdir(path string) error {
	if err := c.m.ops.mkdir(path); err != nil {
		return err
	}
	c.created = append(c.created, path)
	return nil
}

// undo removes the created directories, newest first.
func (c *creation) undo() {
	for i := len(c.created) - 1; i >= 0; i-- {
		if err := c.m.ops.rmdir(c.created[i]); err != nil && !errors.Is(err, fs.ErrNotExist) {
			c.m.log.Warn("removing cgroup after a failed create", "dir", c.created[i], "err", err)
		}
	}
	c.created = nil
}

// ensureParent creates the directories from base down to base/m.parent
// that do not exist yet; after creating each one it calls created, if not
// nil (v2 enables controllers there). Parents are shared by all sandboxes
// and are never removed.
func (m *Manager) ensureParent(base string, created func(dir string) error) error {
	dir := base
	for _, part := range strings.Split(m.parent, "/") {
		dir = filepath.Join(dir, part)
		err := m.ops.mkdir(dir)
		if err != nil && !errors.Is(err, fs.ErrExist) {
			return cove.Errorf(cove.CodeUnavailable, "creating cgroup %s: %w", dir, err)
		}
		if created != nil {
			if err := created(dir); err != nil {
				return err
			}
		}
	}
	return nil
}

// mkdirSandbox creates base/m.parent/id, retrying once if the parent
// vanished in between (a concurrent cleanup removed an empty parent).
func (c *creation) mkdirSandbox(base, id string, prepare func(dir string) error) (string, error) {
	dir := filepath.Join(base, c.m.parent, id)
	for attempt := 0; ; attempt++ {
		if err := c.m.ensureParent(base, prepare); err != nil {
			return "", err
		}
		err := c.mkdir(dir)
		switch {
		case err == nil:
			return dir, nil
		case errors.Is(err, fs.ErrExist):
			return "", cove.Errorf(cove.CodeConflict, "cgroup of sandbox %s exists already at %s", id, dir)
		case errors.Is(err, fs.ErrNotExist) && attempt == 0:
			continue
		default:
			return "", cove.Errorf(cove.CodeUnavailable, "creating cgroup %s: %w", dir, err)
		}
	}
}

// setLimit writes a limit and fails closed.
func setLimit(path, val string) error {
	if err := writeFile(path, val); err != nil {
		return cove.Errorf(cove.CodeUnavailable, "setting cgroup limit %s to %s: %w", filepath.Base(path), val, err)
	}
	return nil
}

// delegate chowns path to the agent.
func delegate(path string, uid, gid int) error {
	if err := os.Chown(path, uid, gid); err != nil {
		return cove.Errorf(cove.CodeUnavailable, "delegating cgroup file %s to the agent: %w", filepath.Base(path), err)
	}
	return nil
}

// cpuQuota converts a CPU count to a CFS quota for cfsPeriod, never below
// the kernel's minimum of 1 ms.
func cpuQuota(cpus float64) int64 {
	q := int64(cpus*cfsPeriod + 0.5)
	return max(q, 1000)
}

// Open returns the Group of an existing sandbox, for example after cove
// restarted. A partially created or removed group opens too, so that
// Destroy can finish it. Its error has code cove.CodeNotFound when no
// cgroup of id exists.
func (m *Manager) Open(id string) (*Group, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	for _, p := range m.parentDirs() {
		if exists(filepath.Join(p, id)) {
			return &Group{m: m, id: id}, nil
		}
	}
	return nil, cove.Errorf(cove.CodeNotFound, "no cgroup for sandbox %s", id)
}

// List returns the ids of the sandboxes that have a cgroup under the
// parent in any hierarchy, sorted; cove uses it to sweep the leftovers of
// crashed runs.
func (m *Manager) List() ([]string, error) {
	seen := map[string]bool{}
	for _, p := range m.parentDirs() {
		entries, err := os.ReadDir(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("listing cgroups: %w", err)
		}
		for _, e := range entries {
			if e.IsDir() && checkID(e.Name()) == nil {
				seen[e.Name()] = true
			}
		}
	}
	ids := make([]string, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}

// Group is the cgroup subtree of one sandbox.
type Group struct {
	m  *Manager
	id string
}

// ID returns the sandbox id.
func (g *Group) ID() string { return g.id }

// dirs returns the sandbox's top directory in every hierarchy (v1) or the
// unified hierarchy (v2).
func (g *Group) dirs() []string {
	ps := g.m.parentDirs()
	for i, p := range ps {
		ps[i] = filepath.Join(p, g.id)
	}
	return ps
}

// userDirOf returns the user directory of the hierarchy carrying
// controller c (v1), or the user directory (v2). "" if there is none.
func (g *Group) userDirOf(c string) string {
	if g.m.version == V2 {
		return filepath.Join(g.m.root, g.m.parent, g.id, userDir)
	}
	i := g.m.hierOf(c)
	if i < 0 {
		return ""
	}
	return filepath.Join(g.m.hiers[i].mount, g.m.parent, g.id, userDir)
}

// AddAgent moves process pid (all its threads) into the agent's cgroup:
// <id>/ in every v1 hierarchy, <id>/agent on v2. Its error has code
// cove.CodeUnavailable.
func (g *Group) AddAgent(pid int) error {
	var targets []string
	if g.m.version == V2 {
		targets = []string{filepath.Join(g.dirs()[0], agentDir)}
	} else {
		targets = g.dirs()
	}
	val := strconv.Itoa(pid)
	for _, dir := range targets {
		if err := writeFile(filepath.Join(dir, "cgroup.procs"), val); err != nil {
			return cove.Errorf(cove.CodeUnavailable, "moving the agent (pid %d) into cgroup %s: %w", pid, dir, err)
		}
	}
	return nil
}

// AgentFiles opens the directories the agent works through, for the host
// to pass to it (for example as exec.Cmd.ExtraFiles) and the agent to give
// to OpenDelegated. Each is an O_RDONLY|O_DIRECTORY descriptor of a user
// directory, opened by the caller:
//
//   - v2: one, <root>/cove/<id>/user;
//   - v1: one per hierarchy, in the order memory, pids, cpu, cpuacct,
//     freezer. A hierarchy that carries several of these (such as
//     "cpu,cpuacct") appears once, at the place of its first controller;
//     cpuacct and freezer are left out when they are not mounted. On a
//     host with every controller mounted separately that is five
//     descriptors: memory, pids, cpu, cpuacct, freezer.
//
// OpenDelegated recognizes each directory by the control files in it, so
// the agent needs to know only how many there are. The caller closes the
// files once the agent has them.
func (g *Group) AgentFiles() ([]*os.File, error) {
	var dirs []string
	if g.m.version == V2 {
		dirs = []string{g.userDirOf("")}
	} else {
		for _, h := range g.m.hiers {
			dirs = append(dirs, filepath.Join(h.mount, g.m.parent, g.id, userDir))
		}
	}
	files := make([]*os.File, 0, len(dirs))
	for _, d := range dirs {
		f, err := os.OpenFile(d, os.O_RDONLY|syscall.O_DIRECTORY, 0)
		if err != nil {
			for _, f := range files {
				f.Close()
			}
			return nil, fmt.Errorf("opening cgroup %s for the agent: %w", d, err)
		}
		files = append(files, f)
	}
	return files, nil
}
