package volume

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/cove-sandbox/cove"
)

// createImage makes a sparse file of size bytes and formats it as btrfs with
// the mkfs program ("" when there is none). It works on a temporary name and
// renames at the end, so that an image at its final name is always
// completely formatted, even after a crash.
func createImage(ctx context.Context, mkfs, image string, size int64) error {
	if mkfs == "" {
		return cove.Errorf(cove.CodeUnavailable, "workspace disk limits need btrfs: install btrfs-progs (apt-get install btrfs-progs)")
	}
	tmp := image + ".tmp"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return cove.Errorf(cove.CodeUnavailable, "creating workspace volume image: %w", err)
	}
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return cove.Errorf(cove.CodeUnavailable, "creating workspace volume image: %w", err)
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return cove.Errorf(cove.CodeUnavailable, "creating workspace volume image: %w", err)
	}
	// -K: discarding a fresh sparse file is wasted work. -m single: one copy
	// of metadata is enough for scratch space, and halves metadata writes.
	cmd := exec.CommandContext(ctx, mkfs, "-q", "-K", "-m", "single", "-L", "cove-workspaces", tmp)
	if out, err := cmd.CombinedOutput(); err != nil {
		os.Remove(tmp)
		if ctx.Err() != nil {
			return cove.Errorf(cove.CodeTimeout, "formatting workspace volume image: %w", ctx.Err())
		}
		return cove.Errorf(cove.CodeUnavailable, "formatting workspace volume image: %w: %s", err, bytes.TrimSpace(out))
	}
	if err := os.Rename(tmp, image); err != nil {
		os.Remove(tmp)
		return cove.Errorf(cove.CodeUnavailable, "creating workspace volume image: %w", err)
	}
	return nil
}

// findMkfs looks for mkfs.btrfs in PATH and then in the sbin directories,
// which a service's PATH often lacks.
func findMkfs() (string, bool) {
	if p, err := exec.LookPath("mkfs.btrfs"); err == nil {
		return p, true
	}
	for _, p := range []string{"/usr/sbin/mkfs.btrfs", "/sbin/mkfs.btrfs", "/usr/local/sbin/mkfs.btrfs"} {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, true
		}
	}
	return "", false
}

// attachLoop attaches image to a free loop device that clears itself on its
// last close, and returns the device's path and an open handle that keeps it
// attached until the caller has mounted it.
func attachLoop(image string) (string, *os.File, error) {
	img, err := os.OpenFile(image, os.O_RDWR, 0)
	if err != nil {
		return "", nil, err
	}
	defer img.Close() // once configured, the loop device holds its own reference
	ctl, err := os.OpenFile("/dev/loop-control", os.O_RDWR, 0)
	if err != nil {
		return "", nil, err
	}
	defer ctl.Close()

	cfg := unix.LoopConfig{
		Fd: uint32(img.Fd()),
		// Direct I/O keeps the image's pages out of the host page cache,
		// where they would duplicate the btrfs cache above them; the kernel
		// falls back to buffered I/O where the host filesystem cannot.
		Info: unix.LoopInfo64{Flags: unix.LO_FLAGS_AUTOCLEAR | unix.LO_FLAGS_DIRECT_IO},
	}
	copy(cfg.Info.File_name[:len(cfg.Info.File_name)-1], image)
	// Another process may take the device LOOP_CTL_GET_FREE offered between
	// the two calls; it then reports EBUSY and the next free one is tried.
	for range 32 {
		n, err := unix.IoctlRetInt(int(ctl.Fd()), unix.LOOP_CTL_GET_FREE)
		if err != nil {
			return "", nil, fmt.Errorf("finding a free loop device: %w", err)
		}
		dev := fmt.Sprintf("/dev/loop%d", n)
		loop, err := openLoop(dev, n)
		if err != nil {
			return "", nil, err
		}
		err = unix.IoctlLoopConfigure(int(loop.Fd()), &cfg)
		if err == nil {
			return dev, loop, nil
		}
		loop.Close()
		if !errors.Is(err, unix.EBUSY) {
			return "", nil, fmt.Errorf("configuring %s: %w", dev, err)
		}
	}
	return "", nil, errors.New("other processes kept taking the free loop devices")
}

// openLoop opens loop device n, creating its node when /dev is not a
// devtmpfs (as in some containers) and so lacks it.
func openLoop(dev string, n int) (*os.File, error) {
	f, err := os.OpenFile(dev, os.O_RDWR, 0)
	if !errors.Is(err, os.ErrNotExist) {
		return f, err
	}
	b, rerr := os.ReadFile(fmt.Sprintf("/sys/devices/virtual/block/loop%d/dev", n))
	var major, minor uint32
	if rerr != nil {
		return nil, err
	}
	if _, serr := fmt.Sscanf(string(b), "%d:%d", &major, &minor); serr != nil {
		return nil, fmt.Errorf("reading number of %s: %w", dev, serr)
	}
	if merr := unix.Mknod(dev, unix.S_IFBLK|0o660, int(unix.Mkdev(major, minor))); merr != nil && !errors.Is(merr, unix.EEXIST) {
		return nil, fmt.Errorf("creating %s: %w", dev, merr)
	}
	return os.OpenFile(dev, os.O_RDWR, 0)
}

// lockFile takes an exclusive flock on path, polling so that closing done
// gives up waiting; a nil done waits for ever. Closing the file unlocks.
func lockFile(done <-chan struct{}, path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			f.Close()
			return nil, err
		}
		select {
		case <-done:
			f.Close()
			return nil, errors.New("gave up waiting for the lock")
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// isMountRoot reports whether path is the root of a mount.
func isMountRoot(path string) (bool, error) {
	var st unix.Statx_t
	err := unix.Statx(unix.AT_FDCWD, path, unix.AT_SYMLINK_NOFOLLOW|unix.AT_NO_AUTOMOUNT, unix.STATX_INO, &st)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if st.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT != 0 {
		return st.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0, nil
	}
	// Kernels before 5.8 do not say; a mount root has another device than
	// its parent.
	var parent unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, filepath.Dir(path), unix.AT_NO_AUTOMOUNT, unix.STATX_INO, &parent); err != nil {
		return false, err
	}
	return st.Dev_major != parent.Dev_major || st.Dev_minor != parent.Dev_minor, nil
}

// isBtrfs reports whether path is on a btrfs filesystem.
func isBtrfs(path string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false, err
	}
	return st.Type == unix.BTRFS_SUPER_MAGIC, nil
}

// isReadOnly reports whether the file system at path is mounted read-only.
func isReadOnly(path string) (bool, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return false, err
	}
	return st.Flags&unix.ST_RDONLY != 0, nil
}
