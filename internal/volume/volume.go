// Package volume gives every sandbox a writable workspace directory with a
// disk limit.
//
// Workspaces are btrfs subvolumes, each limited by its own qgroup, on one
// btrfs filesystem shared by all sandboxes and by later runs of cove. That
// filesystem is the host's own when the state directory is on btrfs, and
// otherwise a sparse image file attached to a loop device. btrfs is used
// because it limits a directory tree cheaply (a subvolume costs about a
// millisecond) and with no kernel options that distribution kernels leave
// out, unlike ext4 and XFS project quotas.
//
// A qgroup limits only its own subvolume: code that may create subvolumes or
// snapshots inside its workspace escapes the limit, so sandboxes must be
// denied the ioctls listed by [SandboxDeniedIoctls].
package volume

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/cove-sandbox/cove"
)

// DefaultImageSize is the virtual size of a new image. The image is sparse,
// so it costs only the space the workspaces use.
const DefaultImageSize int64 = 256 << 30

// minImageSize keeps mkfs.btrfs from refusing a too small device.
const minImageSize int64 = 512 << 20

// File names inside the state directory.
const (
	mountName = "volume"      // the btrfs filesystem (or, on a btrfs host, a directory)
	imageName = "volume.img"  // the sparse image behind the loop device
	lockName  = "volume.lock" // serializes Open and Unmount across processes
	wsName    = "ws"          // parent directory of the workspaces
)

// Options configures Open. The zero value is usable.
type Options struct {
	// ImageSize is the virtual size of the sparse image when one is created
	// (default DefaultImageSize). An existing image keeps its size.
	ImageSize int64
	// Logger receives progress and warnings; nil discards them.
	Logger *slog.Logger
}

// Volume is an open workspace volume. Its methods are safe for concurrent use.
type Volume struct {
	dir  string   // the directory Open was given: its file system holds the workspaces' data
	root string   // dir/volume
	ws   *os.File // dir/volume/ws, held open as the target of subvolume ioctls
	log  *slog.Logger
}

// Open makes dir/volume a mounted btrfs filesystem with quotas enabled and
// returns a handle to it.
//
// If dir/volume is already a btrfs mount (from an earlier run of cove, even a
// crashed one) it is reused, or mounted again if it has gone read-only
// after a failed write. If dir is itself on btrfs, dir/volume is a plain
// directory on that filesystem, whose quotas Open enables. Otherwise Open
// formats dir/volume.img (once; a later Open reattaches it) and mounts it
// through a loop device that detaches itself when the filesystem is
// unmounted. Concurrent Opens, from any process, are serialized.
//
// It returns a CodeUnavailable error when the host cannot provide the volume
// (not root, no btrfs-progs, no loop devices, quotas refused), naming the
// step that failed, CodeTimeout when ctx expires while another Open holds
// the volume's lock, and CodeInvalid for a bad option.
func Open(ctx context.Context, dir string, opts Options) (*Volume, error) {
	if os.Geteuid() != 0 {
		return nil, cove.Errorf(cove.CodeUnavailable, "workspace disk limits need root: cove must run as root to mount and manage the btrfs workspace volume")
	}
	if !layoutSupported() {
		return nil, cove.Errorf(cove.CodeUnavailable, "workspace disk limits are not supported on this architecture (btrfs ioctl layout)")
	}
	size := opts.ImageSize
	if size == 0 {
		size = DefaultImageSize
	}
	if size < minImageSize {
		return nil, cove.Errorf(cove.CodeInvalid, "workspace volume image size %d is below the minimum of %d bytes", size, minImageSize)
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "volume")

	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, cove.Errorf(cove.CodeInvalid, "workspace volume directory: %w", err)
	}
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return nil, cove.Errorf(cove.CodeUnavailable, "creating state directory: %w", err)
	}
	lock, err := lockFile(ctx.Done(), filepath.Join(dir, lockName))
	if err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, cove.Errorf(cove.CodeTimeout, "waiting for the workspace volume lock: %w", ctx.Err())
		}
		if ctx.Err() != nil {
			return nil, cove.Errorf(cove.CodeUnavailable, "waiting for the workspace volume lock: %w", ctx.Err())
		}
		return nil, cove.Errorf(cove.CodeUnavailable, "locking workspace volume: %w", err)
	}
	defer lock.Close() // closing releases the flock

	root := filepath.Join(dir, mountName)
	ownImage, err := setUp(ctx, dir, root, size, log)
	if err != nil {
		return nil, err
	}
	// Root's alone: on disk a workspace belongs to the sandbox user's id
	// inside (1000), which on the host is often a person's, who must not
	// reach it (the data directory itself may be open to all). A sandbox
	// gets its workspace as a mount, and walks no path to it.
	if err := os.Chmod(root, 0o700); err != nil {
		return nil, cove.Errorf(cove.CodeUnavailable, "preparing workspace volume: %w", err)
	}
	wsPath := filepath.Join(root, wsName)
	if err := os.Mkdir(wsPath, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, cove.Errorf(cove.CodeUnavailable, "preparing workspace volume: %w", err)
	}
	if err := os.Chmod(wsPath, 0o700); err != nil {
		return nil, cove.Errorf(cove.CodeUnavailable, "preparing workspace volume: %w", err)
	}
	ws, err := os.OpenFile(wsPath, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return nil, cove.Errorf(cove.CodeUnavailable, "preparing workspace volume: %w", err)
	}
	v := &Volume{dir: dir, root: root, ws: ws, log: log}
	if err := v.enableQuotas(ownImage); err != nil {
		ws.Close()
		return nil, err
	}
	return v, nil
}

// setUp makes root a btrfs filesystem, or a directory on one, and reports
// whether the filesystem is cove's own image (as opposed to the host's).
func setUp(ctx context.Context, dir, root string, size int64, log *slog.Logger) (ownImage bool, err error) {
	mounted, err := isMountRoot(root)
	if err != nil {
		return false, cove.Errorf(cove.CodeUnavailable, "inspecting workspace volume: %w", err)
	}
	image := filepath.Join(dir, imageName)
	if mounted {
		if ok, err := isBtrfs(root); err != nil || !ok {
			return false, cove.Errorf(cove.CodeUnavailable, "%s is mounted but is not a btrfs filesystem; unmount it so cove can mount its workspace volume there", root)
		}
		if ro, err := isReadOnly(root); err != nil || !ro {
			log.Debug("reusing mounted workspace volume", "path", root)
			return true, nil
		}
		// btrfs makes itself read-only for good after a failed write, as
		// when the disk that holds its image filled up: only a new mount
		// makes it writable again, once nothing holds the old one (a
		// server's sandboxes die with it; the mount below fails while a
		// one-shot cove run's still work in it, and says so).
		if _, err := os.Stat(image); err != nil {
			return false, readOnlyError(root, dir)
		}
		log.Warn("the workspace volume is read-only (a write failed, as when the disk that holds its image fills up); mounting it again", "path", root, "image", image)
		if err := unix.Unmount(root, 0); err != nil {
			return false, cove.Errorf(cove.CodeUnavailable, "%s; unmounting it to mount it again failed (%w): stop what uses it, then run umount %s", readOnlyError(root, dir).Message, err, root)
		}
	}
	if ok, err := isBtrfs(dir); err != nil {
		return false, cove.Errorf(cove.CodeUnavailable, "inspecting state directory: %w", err)
	} else if ok {
		if err := os.Mkdir(root, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
			return false, cove.Errorf(cove.CodeUnavailable, "preparing workspace volume: %w", err)
		}
		log.Info("state directory is on btrfs; using it for workspaces", "path", root)
		return false, nil
	}

	start := time.Now()
	created := false
	if _, err := os.Stat(image); errors.Is(err, os.ErrNotExist) {
		mkfs, _ := findMkfs()
		if err := createImage(ctx, mkfs, image, size); err != nil {
			return false, err
		}
		created = true
	} else if err != nil {
		return false, cove.Errorf(cove.CodeUnavailable, "inspecting workspace volume image: %w", err)
	}
	if err := os.Mkdir(root, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return false, cove.Errorf(cove.CodeUnavailable, "preparing workspace volume mount point: %w", err)
	}
	dev, loop, err := attachLoop(image)
	if err != nil {
		return false, cove.Errorf(cove.CodeUnavailable, "attaching loop device: %w", err)
	}
	// The loop device detaches itself on its last close; the mount holds it
	// from here on, so it goes away when the filesystem is unmounted.
	defer loop.Close()
	// nosuid and nodev: sandboxes write here, and the host must never honour
	// a set-uid bit or a device node they leave behind.
	if err := unix.Mount(dev, root, "btrfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOATIME, ""); err != nil {
		return false, cove.Errorf(cove.CodeUnavailable, "mounting workspace volume: %w", err)
	}
	log.Info("mounted workspace volume", "path", root, "device", dev, "image", image,
		"formatted", created, "elapsed", time.Since(start))
	return true, nil
}

// enableQuotas turns qgroups on, repairs their accounting if it is marked
// inconsistent, and drops qgroups left by deleted workspaces.
func (v *Volume) enableQuotas(ownImage bool) error {
	return v.control(func(fd int) error {
		// Quotas turned on just now start out marked inconsistent: that
		// is no news, unlike on a file system that had them already.
		_, statusErr := qgroupStatus(fd)
		wasOn := statusErr == nil
		if err := quotaEnable(fd); err != nil {
			return cove.Errorf(cove.CodeUnavailable, "enabling btrfs quotas on %s: %w", v.root, err)
		}
		flags, err := qgroupStatus(fd)
		if err != nil {
			return cove.Errorf(cove.CodeUnavailable, "reading btrfs quota status: %w", err)
		}
		// Inconsistent numbers make limits unreliable until a rescan.
		if flags&qgroupStatusInconsistent != 0 && flags&qgroupStatusRescan == 0 {
			if wasOn {
				v.log.Info("btrfs quota numbers are inconsistent; rescanning", "path", v.root)
			} else {
				v.log.Debug("btrfs quotas turned on; scanning", "path", v.root)
			}
			if err := quotaRescan(fd); err != nil && !errors.Is(err, unix.EINPROGRESS) {
				v.log.Warn("starting btrfs quota rescan", "err", err)
			}
		}
		if ownImage {
			v.removeStaleQgroups(fd)
		}
		return nil
	})
}

// removeStaleQgroups deletes the qgroups of subvolumes that no longer exist.
// Recent kernels do that themselves once the cleaner has dropped a deleted
// subvolume; older ones refuse nothing and forget nothing, so without this
// sweep their qgroups would pile up. Only done on cove's own image: the
// qgroups of a host filesystem are not cove's to judge.
func (v *Volume) removeStaleQgroups(fd int) {
	qgroups, err := level0Qgroups(fd)
	if err != nil {
		v.log.Warn("listing btrfs qgroups", "err", err)
		return
	}
	live, err := subvolumes(fd)
	if err != nil {
		v.log.Warn("listing btrfs subvolumes", "err", err)
		return
	}
	for _, id := range qgroups {
		if id < firstFreeObjectID || live[id] {
			continue
		}
		if err := qgroupRemove(fd, id); err != nil {
			v.log.Debug("removing stale qgroup", "qgroup", id, "err", err)
		}
	}
}

// Create makes the workspace for sandbox id, a subvolume at Path(id) owned by
// uid:gid with mode 0755, and returns its path.
//
// The limit applies to referenced bytes (data and metadata reachable from
// the workspace). As long as nothing is shared with other subvolumes,
// referenced and exclusive bytes are the same; if workspaces are ever cloned
// from a snapshot, a referenced limit still bounds what the workspace
// holds, whereas an exclusive one would grow it by the shared part.
//
// It returns CodeInvalid for a malformed id or a non-positive limit,
// CodeConflict when the workspace exists, and CodeUnavailable after Close.
func (v *Volume) Create(id string, limitBytes int64, uid, gid int) (string, error) {
	if err := validID(id); err != nil {
		return "", err
	}
	if limitBytes <= 0 {
		return "", cove.Errorf(cove.CodeInvalid, "workspace disk limit must be positive, not %d", limitBytes)
	}
	if uid < 0 || gid < 0 {
		return "", cove.Errorf(cove.CodeInvalid, "workspace owner %d:%d is not a valid uid:gid", uid, gid)
	}
	// The volume image is sparse and larger than most disks: a workspace
	// limit above what the host has free would let one sandbox fill it.
	var st unix.Statfs_t
	if err := unix.Statfs(v.dir, &st); err == nil {
		free := int64(st.Bavail) * st.Bsize
		if free == 0 {
			return "", cove.Errorf(cove.CodeUnavailable, "the disk that holds the workspaces (the file system of %s) is full: no sandbox can be made until space is freed there", v.dir)
		}
		if limitBytes > free {
			return "", cove.Errorf(cove.CodeInvalid, "disk %s is more than the %s free on the file system of %s, where workspaces are kept: ask for less",
				cove.FormatBytes(limitBytes), cove.FormatBytes(free), v.dir)
		}
	}
	err := v.control(func(fd int) error {
		if err := subvolCreate(fd, id, uint64(limitBytes)); err != nil {
			if errors.Is(err, unix.EEXIST) {
				return cove.Errorf(cove.CodeConflict, "workspace %q already exists", id)
			}
			if errors.Is(err, unix.EROFS) {
				return readOnlyError(v.root, v.dir)
			}
			return cove.Errorf(cove.CodeInternal, "creating workspace subvolume: %w", err)
		}
		// The subvolume is new and in a directory only cove writes to, so
		// these path-based calls cannot be redirected.
		err := unix.Fchownat(fd, id, uid, gid, unix.AT_SYMLINK_NOFOLLOW)
		if err == nil {
			err = unix.Fchmodat(fd, id, 0o755, 0)
		}
		if err != nil {
			if derr := subvolDestroy(fd, id); derr != nil {
				v.log.Warn("removing half-created workspace", "id", id, "err", derr)
			}
			return cove.Errorf(cove.CodeInternal, "setting workspace owner: %w", err)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return v.Path(id), nil
}

// Delete removes the workspace of id and everything in it, including
// subvolumes that code inside created. A missing workspace is not an error.
// The space is reclaimed in the background. It returns CodeInvalid for a
// malformed id and CodeUnavailable after Close.
func (v *Volume) Delete(id string) error {
	if err := validID(id); err != nil {
		return err
	}
	return v.control(func(wsFd int) error {
		sub, err := v.openWorkspace(wsFd, id)
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		if err != nil {
			return cove.Errorf(cove.CodeInternal, "opening workspace %q: %w", id, err)
		}
		subID, err := subvolID(sub)
		unix.Close(sub)
		if err != nil {
			return cove.Errorf(cove.CodeInternal, "looking up workspace subvolume: %w", err)
		}
		var destroyed []uint64
		// Retry in case code still running in the sandbox nests a new
		// subvolume between the listing and the delete.
		for attempt := 0; ; attempt++ {
			nested, err := descendants(wsFd, subID)
			if err != nil {
				return cove.Errorf(cove.CodeInternal, "listing nested subvolumes: %w", err)
			}
			for _, n := range nested {
				if err := subvolDestroyByID(wsFd, n); err != nil && !errors.Is(err, unix.ENOENT) {
					return cove.Errorf(cove.CodeInternal, "deleting nested subvolume %d: %w", n, err)
				}
				destroyed = append(destroyed, n)
			}
			err = subvolDestroy(wsFd, id)
			if err == nil || errors.Is(err, unix.ENOENT) {
				break
			}
			if !errors.Is(err, unix.ENOTEMPTY) || attempt == 3 {
				return cove.Errorf(cove.CodeInternal, "deleting workspace subvolume: %w", err)
			}
		}
		destroyed = append(destroyed, subID)
		// Kernels from 6.x on refuse (EBUSY) until the cleaner has dropped
		// the subvolume and then delete the qgroup themselves; older ones
		// accept it now. Whatever is left, the next Open sweeps.
		for _, q := range destroyed {
			if err := qgroupRemove(wsFd, q); err != nil && !errors.Is(err, unix.EBUSY) && !errors.Is(err, unix.ENOENT) {
				v.log.Debug("removing qgroup of deleted workspace", "id", id, "qgroup", q, "err", err)
			}
		}
		return nil
	})
}

// openWorkspace opens the root of workspace id and checks that it is a
// subvolume root, so that a stray directory is never mistaken for one.
func (v *Volume) openWorkspace(wsFd int, id string) (int, error) {
	fd, err := unix.Openat(wsFd, id, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if st.Ino != firstFreeObjectID {
		unix.Close(fd)
		return -1, fmt.Errorf("%s is not a btrfs subvolume", v.Path(id))
	}
	return fd, nil
}

// Path returns where the workspace of id lives (whether or not it exists),
// or "" when id is not a valid workspace id.
func (v *Volume) Path(id string) string {
	if validID(id) != nil {
		return ""
	}
	return filepath.Join(v.root, wsName, id)
}

// List returns the ids of all existing workspaces, sorted, so that a caller
// can delete those left behind by a crash.
func (v *Volume) List() ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(v.root, wsName))
	if err != nil {
		return nil, cove.Errorf(cove.CodeUnavailable, "listing workspaces: %w", err)
	}
	var ids []string
	for _, e := range entries {
		if e.IsDir() && validID(e.Name()) == nil {
			ids = append(ids, e.Name())
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// Usage returns the bytes the workspace of id references according to its
// qgroup, plus those of any subvolume nested in it. btrfs updates these
// numbers when it commits a transaction (every 30 seconds by default, or on
// sync), so recent writes may not show yet. It returns CodeNotFound for a
// missing workspace.
func (v *Volume) Usage(id string) (int64, error) {
	if err := validID(id); err != nil {
		return 0, err
	}
	var total uint64
	err := v.control(func(wsFd int) error {
		sub, err := v.openWorkspace(wsFd, id)
		if errors.Is(err, unix.ENOENT) {
			return cove.Errorf(cove.CodeNotFound, "workspace %q does not exist", id)
		}
		if err != nil {
			return cove.Errorf(cove.CodeInternal, "opening workspace %q: %w", id, err)
		}
		defer unix.Close(sub)
		subID, err := subvolID(sub)
		if err != nil {
			return cove.Errorf(cove.CodeInternal, "looking up workspace subvolume: %w", err)
		}
		nested, err := descendants(sub, subID)
		if err != nil {
			return cove.Errorf(cove.CodeInternal, "listing nested subvolumes: %w", err)
		}
		for _, q := range append(nested, subID) {
			rfer, _, err := qgroupUsage(sub, q)
			if err != nil {
				return cove.Errorf(cove.CodeInternal, "reading workspace qgroup: %w", err)
			}
			total += rfer
		}
		return nil
	})
	return int64(total), err
}

// Close releases the handle. It does not unmount: the volume is shared with
// later runs of cove, and with sandboxes still running.
func (v *Volume) Close() error {
	if err := v.ws.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
		return err
	}
	return nil
}

// control runs fn with the descriptor of the workspaces directory, which
// stays valid for the duration of fn even if Close runs concurrently.
func (v *Volume) control(fn func(fd int) error) error {
	rc, err := v.ws.SyscallConn()
	if err != nil {
		return cove.Errorf(cove.CodeUnavailable, "workspace volume is closed")
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return cove.Errorf(cove.CodeUnavailable, "workspace volume is closed")
	}
	return ferr
}

// Trim tells the file system to discard the blocks it no longer uses
// (FITRIM), which gives the space of deleted workspaces back to the disk
// that holds the volume's image: btrfs's own discards leave much of it in
// the image (a volume that had held 1 GiB of workspaces kept that much
// on disk once they were all deleted). It returns how many bytes the
// file system says it trimmed. On a btrfs host, where the volume is a
// directory of the host's file system, it trims that file system.
// Errors: unavailable after Close, or where the file system cannot trim.
func (v *Volume) Trim() (uint64, error) {
	r := fstrimRange{length: ^uint64(0)}
	err := v.control(func(fd int) error {
		// What deletions freed is free to trim once committed.
		if err := unix.Syncfs(fd); err != nil {
			return err
		}
		return ioctl(fd, iocFitrim, unsafe.Pointer(&r))
	})
	if err != nil {
		return 0, cove.Errorf(cove.CodeUnavailable, "trimming the workspace volume: %w", err)
	}
	return r.length, nil
}

// unmountBusyWait is how long Unmount retries a volume that is busy.
const unmountBusyWait = 2 * time.Second

// Unmount unmounts dir/volume. It is a no-op when nothing is mounted there,
// such as when dir is on a btrfs host filesystem. The loop device detaches
// itself once no sandbox holds the filesystem any more; the image is kept.
// It returns CodeUnavailable when the volume is busy.
func Unmount(dir string) error {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return cove.Errorf(cove.CodeInvalid, "workspace volume directory: %w", err)
	}
	if _, err := os.Stat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	lock, err := lockFile(nil, filepath.Join(dir, lockName))
	if err != nil {
		return cove.Errorf(cove.CodeUnavailable, "locking workspace volume: %w", err)
	}
	defer lock.Close()
	root := filepath.Join(dir, mountName)
	// A busy volume may be busy only for a moment: a process that is
	// exiting, or one between fork and exec that still holds a copy of
	// every descriptor of its parent, close-on-exec ones included.
	busyUntil := time.Now().Add(unmountBusyWait)
	// Loop because mounts may be stacked, for example by a hand-made mount
	// over cove's.
	for stacked := 0; stacked < 16; {
		mounted, err := isMountRoot(root)
		if err != nil {
			return cove.Errorf(cove.CodeUnavailable, "inspecting workspace volume: %w", err)
		}
		if !mounted {
			return nil
		}
		err = unix.Unmount(root, 0)
		switch {
		case err == nil:
			stacked++
		case errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOENT):
			return nil
		case errors.Is(err, unix.EBUSY) && time.Now().Before(busyUntil):
			time.Sleep(10 * time.Millisecond)
		default:
			return cove.Errorf(cove.CodeUnavailable, "unmounting workspace volume: %w", err)
		}
	}
	return cove.Errorf(cove.CodeUnavailable, "unmounting workspace volume: %s is still mounted", root)
}

// validID accepts the ids that may become a path component: [a-z0-9-]{1,64}.
func validID(id string) error {
	if len(id) == 0 || len(id) > 64 {
		return cove.Errorf(cove.CodeInvalid, "workspace id must be 1 to 64 characters long")
	}
	for _, c := range []byte(id) {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return cove.Errorf(cove.CodeInvalid, "workspace id %q may contain only a-z, 0-9 and '-'", id)
		}
	}
	return nil
}

// SandboxDeniedIoctls returns the ioctl requests a sandbox's seccomp filter
// must refuse. Creating a subvolume needs only write access to a directory
// and snapshotting one only ownership of it, yet a new subvolume gets a
// qgroup of its own without a limit, so either would let code escape its
// workspace's disk limit. The kernel reads the request as a 32-bit number:
// compare only the low 32 bits of the argument, or a set high bit slips by.
func SandboxDeniedIoctls() []uint32 {
	return []uint32{uint32(iocSnapCreate), uint32(iocSubvolCreate), uint32(iocSnapCreateV2), uint32(iocSubvolCreateV2)}
}

// Health returns nil while workspaces can be written, and an unavailable
// error that says why and what to do when the volume has gone read-only.
// Its message names no path (anyone may ask a server's health); the
// paths are in its cause, for the log.
func (v *Volume) Health() error {
	if ro, err := isReadOnly(v.root); err == nil && ro {
		return &cove.Error{Code: cove.CodeUnavailable, Err: readOnlyError(v.root, v.dir),
			Message: readOnlyMessage("the workspace volume", "cove's data directory")}
	}
	return nil
}

// readOnlyError says that the workspace volume at root has gone read-only,
// and what to do about it.
func readOnlyError(root, dir string) *cove.Error {
	return cove.Errorf(cove.CodeUnavailable, "%s", readOnlyMessage("the workspace volume "+root, dir))
}

// readOnlyMessage says that volume has gone read-only and that the disk
// that holds dir needs room again.
func readOnlyMessage(volume, dir string) string {
	return volume + " is read-only: btrfs makes itself read-only after a failed write, most often because the disk that holds " + dir + " filled up; free space there and restart cove, which mounts it again"
}
