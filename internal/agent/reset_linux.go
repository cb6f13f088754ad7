package agent

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// A reset returns a sandbox to the state it booted in, so that the host can
// hand it to another one-call run of the same owner instead of creating a
// new one: no process but the agent, empty workspace, /tmp and /dev/shm
// with their original owners and modes, and neither inode flags nor
// extended attributes, and no System V IPC object. Whatever a reset cannot vouch for, it refuses, and
// the host destroys the sandbox instead.

// resetMaxEntries bounds the files and directories a reset removes: a
// sandbox that holds more is destroyed rather than emptied, which costs
// less (its workspace, a subvolume, goes whole).
const resetMaxEntries = 10000

// resetWait bounds how long a reset waits for the processes of the last
// execution to be gone; they were killed before its result was sent.
const resetWait = 200 * time.Millisecond

var errResetBudget = errors.New("more files than a reset removes")

// resetDir is a writable directory a reset empties, and what its own
// inode must be again.
type resetDir struct {
	path     string
	mode     uint32
	uid, gid int
}

func (s *server) reset() (*ResetResult, error) {
	if s.kept.Load() {
		return nil, errors.New("the sandbox has run background processes, terminals or contexts")
	}
	if n := s.running.Load(); n > 0 {
		return nil, fmt.Errorf("%d executions are running", n)
	}
	if err := awaitAlone(resetWait); err != nil {
		return nil, err
	}
	if err := noSysVIPC(); err != nil {
		return nil, err
	}
	res := &ResetResult{}
	dirs := []resetDir{
		{workspaceDir, 0o755, s.cfg.UID, s.cfg.GID},
		{"/tmp", 0o1777, 0, 0},
		{"/dev/shm", 0o1777, 0, 0},
	}
	budget := int64(resetMaxEntries)
	// btrfs counts what is removed against the disk quota when its
	// transaction commits, which a write that finds the quota full brings
	// about: the next run has its whole limit without a sync here.
	for _, d := range dirs {
		if err := resetOne(d, &budget, res); err != nil {
			return nil, fmt.Errorf("emptying %s: %w", d.path, err)
		}
	}
	return res, nil
}

// resetOne empties d and restores its own inode.
func resetOne(d resetDir, budget *int64, res *ResetResult) error {
	fd, err := unix.Open(d.path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if err := emptyAt(fd, budget, res); err != nil {
		return err
	}
	if err := unix.Fchown(fd, d.uid, d.gid); err != nil {
		return err
	}
	if err := unix.Fchmod(fd, d.mode); err != nil {
		return err
	}
	if err := clearInodeFlags(fd); err != nil {
		return err
	}
	return removeXattrs(fd)
}

// clearInodeFlags clears the inode flags (chattr) of fd, which a new
// directory does not have and its owner may set (no-dump, no-atime,
// no-copy-on-write, which new files inherit, ...).
func clearInodeFlags(fd int) error {
	flags, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	if err == unix.ENOTTY || err == unix.EOPNOTSUPP || err == unix.ENOSYS {
		return nil
	}
	if err != nil || flags == 0 {
		return err
	}
	if err := unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, 0); err != nil {
		return fmt.Errorf("clearing inode flags %#x: %w", flags, err)
	}
	return nil
}

// emptyAt removes everything in the directory dirfd. It never follows a
// symbolic link: each directory is opened relative to its parent with
// O_NOFOLLOW, and no process of the sandbox is left to swap one in.
func emptyAt(dirfd int, budget *int64, res *ResetResult) error {
	dup, err := unix.Dup(dirfd)
	if err != nil {
		return err
	}
	dir := os.NewFile(uintptr(dup), "dir")
	defer dir.Close()
	for {
		removed := 0
		for {
			names, err := dir.Readdirnames(256)
			for _, name := range names {
				if err := removeAt(dirfd, name, budget, res); err != nil {
					return err
				}
				removed++
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return err
			}
		}
		if removed == 0 {
			return nil
		}
		// Read again from the start until a pass finds nothing: removing
		// entries under a directory's read position may hide others.
		if _, err := dir.Seek(0, io.SeekStart); err != nil {
			return err
		}
	}
}

// removeAt removes name from the directory dirfd, emptying it first when it
// is a directory.
func removeAt(dirfd int, name string, budget *int64, res *ResetResult) error {
	if *budget--; *budget < 0 {
		return errResetBudget
	}
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return err
	}
	res.Entries++
	res.Bytes += st.Blocks * 512
	flags := 0
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		sub, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		err = emptyAt(sub, budget, res)
		unix.Close(sub)
		if err != nil {
			return err
		}
		flags = unix.AT_REMOVEDIR
	}
	return unix.Unlinkat(dirfd, name, flags)
}

// removeXattrs removes every extended attribute of fd that the agent can
// see (the sandbox user can set only user.* ones and access ACLs).
func removeXattrs(fd int) error {
	buf := make([]byte, 4096)
	n, err := unix.Flistxattr(fd, buf)
	if err != nil {
		if err == unix.ENOTSUP {
			return nil
		}
		return err
	}
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name == "" {
			continue
		}
		if err := unix.Fremovexattr(fd, name); err != nil && err != unix.ENODATA {
			return fmt.Errorf("removing attribute %s: %w", name, err)
		}
	}
	return nil
}

// awaitAlone waits, up to d, until the agent is the only process of the
// sandbox, killing any other after half of d.
func awaitAlone(d time.Duration) error {
	deadline := time.Now().Add(d)
	killed := false
	for {
		others, err := otherProcesses()
		if err != nil {
			return err
		}
		if len(others) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d processes outlived their execution", len(others))
		}
		if !killed && time.Until(deadline) < d/2 {
			for _, pid := range others {
				unix.Kill(pid, unix.SIGKILL)
			}
			killed = true
		}
		time.Sleep(time.Millisecond)
	}
}

// otherProcesses lists the processes of the sandbox but the agent.
func otherProcesses() ([]int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	self := os.Getpid()
	var pids []int
	for _, e := range ents {
		if pid, err := strconv.Atoi(e.Name()); err == nil && pid != self {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// noSysVIPC fails when a System V IPC object exists in the sandbox's IPC
// namespace: the agent may not remove the user's, so such a sandbox is
// not reused.
func noSysVIPC() error {
	for _, kind := range []string{"shm", "sem", "msg"} {
		b, err := os.ReadFile("/proc/sysvipc/" + kind)
		if err != nil {
			return err
		}
		if lines := strings.Count(strings.TrimSpace(string(b)), "\n"); lines > 0 {
			return fmt.Errorf("%d System V IPC objects (%s) remain", lines, kind)
		}
	}
	return nil
}

// removeStaleStages removes the staging directories of uploads that the
// sandbox's stop, or the agent's death, cut short (a resumed sandbox
// boots on its old workspace): they would count against the disk limit
// and show among the user's files. It runs at boot, before any program of
// the sandbox, so that nothing changes the workspace meanwhile, with the
// agent's own ids, so that no mode the user set keeps them. Only the
// workspace root is read: that is where uploads stage.
func removeStaleStages() error {
	fd, err := unix.Open(workspaceDir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	dup, err := unix.Dup(fd)
	if err != nil {
		return err
	}
	dir := os.NewFile(uintptr(dup), workspaceDir)
	defer dir.Close()
	var stale []string
	for {
		names, err := dir.Readdirnames(1024)
		for _, name := range names {
			if isStageName(name) {
				stale = append(stale, name)
			}
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
	}
	budget := int64(math.MaxInt64)
	for _, name := range stale {
		if err := removeAt(fd, name, &budget, &ResetResult{}); err != nil {
			return fmt.Errorf("removing %s: %w", name, err)
		}
	}
	return nil
}
