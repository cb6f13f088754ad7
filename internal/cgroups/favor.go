package cgroups

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// favorMountDir is the directory under Options.RunDir where the
// favordynmods hierarchy is mounted.
const favorMountDir = "cgroup-favor"

// favorMountOptions mount a named v1 hierarchy without controllers whose
// only purpose is the favordynmods flag. Mounting it switches the kernel's
// cgroup_threadgroup_rwsem to the mode that favors writers, for good (the
// kernel logs "per threadgroup rwsem mechanism can't be disabled"): a
// write to cgroup.procs or tasks then no longer waits for an RCU grace
// period (6 to 15 ms) but takes a fraction of a millisecond, at the price
// of slightly dearer forks and exits system-wide.
const favorMountOptions = "none,name=cove,favordynmods"

// ensureFavorMount mounts the favordynmods hierarchy at
// runDir/cgroup-favor unless something is mounted there already (another
// cove process may have done it). A lock file serializes concurrent cove
// processes; EBUSY (a hierarchy named cove exists with other options) is
// tolerated.
func ensureFavorMount(runDir string, log *slog.Logger) error {
	target := filepath.Join(runDir, favorMountDir)
	if err := os.MkdirAll(target, 0o700); err != nil {
		return fmt.Errorf("creating %s: %w", target, err)
	}
	lock, err := os.OpenFile(filepath.Join(runDir, favorMountDir+".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("opening the mount lock: %w", err)
	}
	defer lock.Close()
	if err := flock(lock); err != nil {
		return fmt.Errorf("locking %s: %w", lock.Name(), err)
	}
	if ok, err := isCgroupMount(target); err != nil || ok {
		return err
	}
	err = unix.Mount("cgroup", target, "cgroup", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, favorMountOptions)
	if errors.Is(err, unix.EBUSY) {
		log.Info("favordynmods hierarchy not mounted: a hierarchy named cove exists with other options", "dir", target)
		return nil
	}
	if err != nil {
		return fmt.Errorf("mounting cgroup -o %s at %s: %w", favorMountOptions, target, err)
	}
	log.Info("mounted the favordynmods cgroup hierarchy", "dir", target)
	return nil
}

// flock takes an exclusive lock on f, released when f is closed.
func flock(f *os.File) error {
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// isCgroupMount reports whether a cgroup v1 file system is mounted at dir.
func isCgroupMount(dir string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return false, fmt.Errorf("statfs %s: %w", dir, err)
	}
	return st.Type == unix.CGROUP_SUPER_MAGIC, nil
}
