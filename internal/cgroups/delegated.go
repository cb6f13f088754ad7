package cgroups

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// v1Probes name a control file that only a v1 directory of each controller
// has; OpenDelegated uses them to recognize the directories it is given.
func v1Probes() map[string]string {
	return map[string]string{
		ctrlMemory:  "memory.limit_in_bytes",
		ctrlPids:    "pids.max",
		ctrlCPU:     "cpu.cfs_quota_us",
		ctrlCPUAcct: "cpuacct.usage",
		ctrlFreezer: "freezer.state",
	}
}

// Delegated is the agent's side of a sandbox's cgroups: the user subtree,
// reached only through directory descriptors the host opened. Its methods
// are safe for concurrent use, except that the thread moves act on the
// calling OS thread.
type Delegated struct {
	version Version
	files   []*os.File
	fds     map[string]int // v1: controller -> descriptor of its user directory
	user    int            // v2: descriptor of the user directory
	peak    *os.File       // v2: memory.peak, kept open (resets are per open file)
	peakRW  bool           // peak is writable (Linux 6.12 and later)
}

// OpenDelegated takes over the directories from Group.AgentFiles, received
// by the agent (for example as os.NewFile(3+i, "")). It marks them
// close-on-exec, so that user processes never inherit them. On v1 it
// recognizes each directory by its control files and needs at least the
// memory, pids and cpu ones. The Delegated owns the files: Close closes
// them. On error they remain the caller's.
func OpenDelegated(v Version, files []*os.File) (*Delegated, error) {
	d := &Delegated{version: v, files: files, user: -1}
	for _, f := range files {
		if f == nil {
			return nil, fmt.Errorf("opening delegated cgroups: nil file")
		}
		syscall.CloseOnExec(int(f.Fd()))
	}
	switch v {
	case V1:
		if err := d.recognizeV1(); err != nil {
			return nil, fmt.Errorf("opening delegated cgroups: %w", err)
		}
	case V2:
		if len(files) != 1 {
			return nil, fmt.Errorf("opening delegated cgroups: v2 takes one directory, got %d", len(files))
		}
		d.user = int(files[0].Fd())
		if !statAt(d.user, "cgroup.procs") || !statAt(d.user, "memory.max") {
			return nil, fmt.Errorf("opening delegated cgroups: %s is not a cgroup v2 user directory with the memory controller", files[0].Name())
		}
		d.openPeak()
	default:
		return nil, fmt.Errorf("opening delegated cgroups: unknown cgroup version %d", v)
	}
	return d, nil
}

// recognizeV1 maps each controller to the descriptor of the directory that
// has its probe file.
func (d *Delegated) recognizeV1() error {
	d.fds = map[string]int{}
	probes := v1Probes()
	for i, f := range d.files {
		fd := int(f.Fd())
		found := false
		for _, c := range v1Controllers() {
			if !statAt(fd, probes[c]) {
				continue
			}
			if _, dup := d.fds[c]; dup {
				return fmt.Errorf("two directories carry the %s controller", c)
			}
			d.fds[c] = fd
			found = true
		}
		if !found {
			return fmt.Errorf("directory %d (%s) is not a cgroup v1 user directory", i, f.Name())
		}
	}
	for _, c := range []string{ctrlMemory, ctrlPids, ctrlCPU} {
		if _, ok := d.fds[c]; !ok {
			return fmt.Errorf("no directory of the %s controller", c)
		}
	}
	return nil
}

// openPeak keeps memory.peak open, read-write where the kernel allows a
// reset (Linux 6.12 and later): a reset applies only to reads through the
// same open file.
func (d *Delegated) openPeak() {
	if f, err := openAt(d.user, "memory.peak", unix.O_RDWR); err == nil {
		d.peak, d.peakRW = f, true
		return
	}
	if f, err := openAt(d.user, "memory.peak", unix.O_RDONLY); err == nil {
		d.peak = f
	}
}

// statAt reports whether name exists under dir.
func statAt(dir int, name string) bool {
	var st unix.Stat_t
	return unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil
}

// Version returns the cgroup version.
func (d *Delegated) Version() Version { return d.version }

// Close closes the delegated directories.
func (d *Delegated) Close() error {
	var errs []error
	if d.peak != nil {
		errs = append(errs, d.peak.Close())
	}
	for _, f := range d.files {
		errs = append(errs, f.Close())
	}
	return errors.Join(errs...)
}

// PrepareForkThread moves the calling OS thread, for good, into the user
// cgroups of every v1 hierarchy except the pids one (whose placement
// Exec.EnterThread does per execution), so that every child it forks is
// born under the user's limits. The caller must have locked its goroutine
// to the thread (runtime.LockOSThread) and keep it locked; the thread must
// not be the process's main thread (thread-group leader), because v1
// charges a process's memory to the cgroup of its leader and lets the OOM
// killer pick a process whose leader is in the cgroup: PrepareForkThread
// refuses it. On v2 it does nothing.
func (d *Delegated) PrepareForkThread() error {
	if d.version != V1 {
		return nil
	}
	if unix.Gettid() == unix.Getpid() {
		return errors.New("moving the fork thread into the user cgroups: refusing to move the main thread; use another locked thread")
	}
	pids := d.fds[ctrlPids]
	var done []int
	for _, c := range v1Controllers() {
		fd, ok := d.fds[c]
		if !ok || fd == pids || slices.Contains(done, fd) {
			continue
		}
		if err := writeAt(fd, "tasks", "0"); err != nil {
			return fmt.Errorf("moving the fork thread into the user %s cgroup: %w", c, err)
		}
		done = append(done, fd)
	}
	return nil
}

// ParkThread moves the calling thread back from an execution's pids cgroup
// to the pids user cgroup, so that the execution's cgroup can be emptied
// and removed. A cgroup that holds a thread of the agent cannot be
// removed. On v2 it does nothing.
func (d *Delegated) ParkThread() error {
	if d.version != V1 {
		return nil
	}
	if err := writeAt(d.fds[ctrlPids], "tasks", "0"); err != nil {
		return fmt.Errorf("parking the fork thread in the user pids cgroup: %w", err)
	}
	return nil
}

// execName is the name of the cgroup of execution n.
func execName(n int) string { return "e" + strconv.Itoa(n) }

// NewExec creates the cgroup of execution n: user/e<n> in the pids
// hierarchy (v1) or in the unified hierarchy (v2). An existing one is an
// error wrapping fs.ErrExist.
func (d *Delegated) NewExec(n int) (*Exec, error) {
	if n < 0 {
		return nil, fmt.Errorf("creating exec cgroup: negative number %d", n)
	}
	name := execName(n)
	parent := d.user
	if d.version == V1 {
		parent = d.fds[ctrlPids]
	}
	if err := unix.Mkdirat(parent, name, 0o755); err != nil {
		return nil, fmt.Errorf("creating exec cgroup %s: %w", name, err)
	}
	e := &Exec{d: d, name: name, parent: parent}
	if d.version == V2 {
		f, err := openAt(parent, name, unix.O_PATH|unix.O_DIRECTORY)
		if err != nil {
			unix.Unlinkat(parent, name, unix.AT_REMOVEDIR)
			return nil, fmt.Errorf("opening exec cgroup %s: %w", name, err)
		}
		e.dir = f
	}
	return e, nil
}

// Exec is the cgroup of one execution. Its methods may run concurrently,
// except Remove, which must come last.
type Exec struct {
	d      *Delegated
	name   string   // e<N>
	parent int      // descriptor of the directory holding it
	dir    *os.File // v2: O_PATH descriptor of e<N>
}

// Name returns the cgroup's directory name, e<N>.
func (e *Exec) Name() string { return e.name }

// EnterThread moves the calling OS thread into the execution's pids cgroup
// (v1), so that the children it forks are born there; the thread must have
// gone through PrepareForkThread. On v2 it does nothing: use CgroupFD.
func (e *Exec) EnterThread() error {
	if e.d.version != V1 {
		return nil
	}
	if err := writeAt(e.parent, e.name+"/tasks", "0"); err != nil {
		return fmt.Errorf("moving the fork thread into exec cgroup %s: %w", e.name, err)
	}
	return nil
}

// CgroupFD returns the descriptor to start children directly in the
// execution's cgroup (SysProcAttr.UseCgroupFD and CgroupFD) on v2, and -1
// on v1. It stays valid until Remove.
func (e *Exec) CgroupFD() int {
	if e.dir == nil {
		return -1
	}
	return int(e.dir.Fd())
}

// read reads control file name of the execution's cgroup.
func (e *Exec) read(name string) ([]byte, error) {
	if e.dir != nil {
		return readAt(int(e.dir.Fd()), name)
	}
	return readAt(e.parent, e.name+"/"+name)
}

// procs lists every process in the cgroup, the caller's own included, as
// pids of the caller's pid namespace. A removed cgroup has none.
func (e *Exec) procs() ([]int, error) {
	data, err := e.read("cgroup.procs")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing processes of exec cgroup %s: %w", e.name, err)
	}
	return parsePids(data)
}

// Pids returns the processes in the execution's cgroup, as pids of the
// caller's pid namespace. The caller's own process is left out: on v1 the
// agent's fork thread may be in the cgroup.
func (e *Exec) Pids() ([]int, error) {
	pids, err := e.procs()
	self := os.Getpid()
	return slices.DeleteFunc(pids, func(p int) bool { return p == self }), err
}

// Kill sends SIGKILL to every process in the execution's cgroup (v2:
// through cgroup.kill) until none is left, for about two seconds at most.
// It never kills the caller's own process.
func (e *Exec) Kill() error {
	k := killer{list: e.procs}
	if e.dir != nil {
		err := writeAt(int(e.dir.Fd()), "cgroup.kill", "1")
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("killing exec cgroup %s: %w", e.name, err)
		}
	}
	if err := k.run(); err != nil {
		return fmt.Errorf("killing exec cgroup %s: %w", e.name, err)
	}
	return nil
}

// Remove kills what is left in the execution's cgroup and removes it. On
// v1 the agent's fork thread must have left it first (ParkThread, or
// EnterThread of another execution): Remove fails otherwise. Removing a
// removed cgroup is fine.
func (e *Exec) Remove() error {
	if err := e.Kill(); err != nil {
		return err
	}
	pids, err := e.procs()
	if err != nil {
		return err
	}
	if slices.Contains(pids, os.Getpid()) {
		return fmt.Errorf("removing exec cgroup %s: a thread of the agent is still in it (call ParkThread on that thread first)", e.name)
	}
	err = rmdirRetry(func(string) error {
		if err := unix.Unlinkat(e.parent, e.name, unix.AT_REMOVEDIR); err != nil {
			return &os.PathError{Op: "rmdir", Path: e.name, Err: err}
		}
		return nil
	}, e.name)
	if err != nil {
		return fmt.Errorf("removing exec cgroup %s: %w", e.name, err)
	}
	if e.dir != nil {
		e.dir.Close()
		e.dir = nil
	}
	return nil
}

// Stats reads the counters of the user subtree.
func (d *Delegated) Stats() (Stats, error) {
	s, err := readStats(d.version, func(ctrl, name string) ([]byte, error) {
		if d.version == V2 {
			if name == "memory.peak" {
				return d.readPeak()
			}
			return readAt(d.user, name)
		}
		fd, ok := d.fds[ctrl]
		if !ok {
			return nil, errNoController
		}
		return readAt(fd, name)
	})
	if err != nil {
		return s, fmt.Errorf("reading delegated cgroup stats: %w", err)
	}
	return s, nil
}

// readPeak reads memory.peak through the file kept open, which honors a
// reset made through it.
func (d *Delegated) readPeak() ([]byte, error) {
	if d.peak == nil {
		return nil, fs.ErrNotExist
	}
	buf := make([]byte, 64)
	n, err := unix.Pread(int(d.peak.Fd()), buf, 0)
	if err != nil {
		return nil, &os.PathError{Op: "read", Path: "memory.peak", Err: err}
	}
	return buf[:n], nil
}

// ResetPeak restarts the memory high-water mark of the user subtree at the
// current usage, so that Stats reports the peak of one execution. On v1 it
// writes memory.max_usage_in_bytes; on v2 it writes memory.peak, which
// Linux supports from 6.12 (an error wrapping errors.ErrUnsupported
// before), and which then applies to Delegated.Stats only.
func (d *Delegated) ResetPeak() error {
	if d.version == V1 {
		if err := writeAt(d.fds[ctrlMemory], "memory.max_usage_in_bytes", "0"); err != nil {
			return fmt.Errorf("resetting memory.max_usage_in_bytes: %w", err)
		}
		return nil
	}
	if !d.peakRW {
		return fmt.Errorf("resetting memory.peak: %w", errors.ErrUnsupported)
	}
	if _, err := unix.Pwrite(int(d.peak.Fd()), []byte("reset\n"), 0); err != nil {
		return fmt.Errorf("resetting memory.peak: %w", err)
	}
	return nil
}

// Memory reads just the user subtree's memory high-water mark and OOM kill
// count: what an execution reports, at two file reads instead of Stats'
// five.
func (d *Delegated) Memory() (peak, oomKills int64, err error) {
	var s Stats
	read := func(ctrl, name string) ([]byte, error) {
		if d.version == V2 {
			if name == "memory.peak" {
				return d.readPeak()
			}
			return readAt(d.user, name)
		}
		fd, ok := d.fds[ctrl]
		if !ok {
			return nil, errNoController
		}
		return readAt(fd, name)
	}
	peakFile, eventsFile, key := "memory.max_usage_in_bytes", "memory.oom_control", "oom_kill"
	if d.version == V2 {
		peakFile, eventsFile = "memory.peak", "memory.events"
	}
	if s.MemoryPeak, err = readValue(read, ctrlMemory, peakFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, 0, fmt.Errorf("reading delegated cgroup memory: %w", err)
	}
	if s.OOMKills, err = readKey(read, ctrlMemory, eventsFile, key); err != nil {
		return 0, 0, fmt.Errorf("reading delegated cgroup memory: %w", err)
	}
	return s.MemoryPeak, s.OOMKills, nil
}
