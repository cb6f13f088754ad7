package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// systemDirs are bound read-only from the host, or recreated as the same
// symlinks on merged-/usr systems.
var systemDirs = []string{"usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32", "opt"}

// devices are bound from the host's /dev (mknod is not allowed in a user
// namespace).
var devices = []string{"null", "zero", "full", "random", "urandom", "tty"}

// maskedProc are /proc files replaced by /dev/null: they leak host state or
// let a process poke the kernel. interrupts counts the host's interrupts by
// device and CPU as they happen, a side channel on what other processes
// and the host's devices do (the timing of keystrokes and of network
// packets).
// (Docker's list; files that only root can read stay unreadable to the
// sandbox's user without a mask.)
var maskedProc = []string{
	"kcore", "keys", "timer_list", "timer_stats", "sched_debug", "sysrq-trigger", "latency_stats", "interrupts",
}

// maskedProcDirs are /proc directories replaced by an empty read-only tmpfs.
var maskedProcDirs = []string{"acpi", "scsi", "asound", "fs", "irq", "bus"}

// setupRoot builds the sandbox's file system view and switches to it. It
// runs in the agent's fresh mount namespace as root of its user namespace.
func setupRoot(cfg *BootConfig) error {
	if err := bootMount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return layerErr("mount propagation", err)
	}
	root := cfg.RootDir
	if err := bootMount("cove-root", root, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755,size=4m"); err != nil {
		return layerErr("root tmpfs", err)
	}
	for _, d := range systemDirs {
		if err := mirrorSystemDir(root, d); err != nil {
			return layerErr("read-only /"+d, err)
		}
	}
	for _, p := range cfg.ReadOnlyBinds {
		if err := bindReadOnly(p, filepath.Join(root, p)); err != nil {
			return layerErr("read-only bind "+p, err)
		}
	}
	// /etc comes from the host, prepared once, attached later with the
	// workspace (attachMount).
	if err := os.Mkdir(filepath.Join(root, "etc"), 0o755); err != nil {
		return layerErr("/etc", err)
	}
	if err := setupDev(root, cfg); err != nil {
		return layerErr("/dev", err)
	}
	if err := setupProc(root); err != nil {
		return layerErr("/proc", err)
	}
	if err := os.Mkdir(filepath.Join(root, "sys"), 0o555); err != nil {
		return layerErr("/sys", err)
	}
	// The workspace is attached later (attachWorkspace), once the host
	// has created it.
	if err := os.Mkdir(filepath.Join(root, "workspace"), 0o755); err != nil {
		return layerErr("/workspace", err)
	}
	if err := mountTmpfs(filepath.Join(root, "tmp"), cfg.TmpBytes); err != nil {
		return layerErr("/tmp", err)
	}
	for _, d := range []string{"var", "run", "home"} {
		if err := os.Mkdir(filepath.Join(root, d), 0o755); err != nil {
			return layerErr("/"+d, err)
		}
	}
	if err := os.Symlink("/tmp", filepath.Join(root, "var", "tmp")); err != nil {
		return layerErr("/var/tmp", err)
	}
	if err := pivot(root); err != nil {
		return layerErr("pivot_root", err)
	}
	// The new root itself becomes read-only; only the workspace, /tmp and
	// /dev/shm stay writable.
	if err := bootMount("", "/", "", unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return layerErr("read-only root", err)
	}
	return nil
}

// attachMount mounts at target a mount the host passed as a detached copy
// (open_tree), and sets attrs on it: the agent need not, and cannot, walk
// the host's directories to reach the workspace or the prepared /etc.
func attachMount(m *os.File, target string, attrs uint64) error {
	defer m.Close()
	if err := bootMoveMount(int(m.Fd()), "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return err
	}
	if attrs == 0 {
		return nil
	}
	return setAttr(target, attrs, 0)
}

func mirrorSystemDir(root, name string) error {
	src := "/" + name
	fi, err := os.Lstat(src)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	dst := filepath.Join(root, name)
	if fi.Mode()&os.ModeSymlink != 0 {
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		return os.Symlink(target, dst)
	}
	if !fi.IsDir() {
		return nil
	}
	return bindReadOnly(src, dst)
}

// bindReadOnly binds src at dst (creating dst as a file or directory like
// src) and makes the whole bound tree read-only, nosuid and nodev.
func bindReadOnly(src, dst string) error {
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	if err := makeMountpoint(dst, fi.IsDir()); err != nil {
		return err
	}
	if err := bootMount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("binding %s: %w", src, err)
	}
	return setAttr(dst, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV, 0)
}

func makeMountpoint(dst string, dir bool) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if dir {
		return os.MkdirAll(dst, 0o755)
	}
	f, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	return f.Close()
}

// setAttr changes mount attributes of the whole tree at path, keeping the
// attributes the kernel locked when the mount was copied into this user
// namespace (mount_setattr only touches the bits it is told to).
func setAttr(path string, set, clr uint64) error {
	attr := &unix.MountAttr{Attr_set: set, Attr_clr: clr}
	if err := bootMountSetattr(unix.AT_FDCWD, path, unix.AT_RECURSIVE, attr); err != nil {
		return fmt.Errorf("mount_setattr %s: %w", path, err)
	}
	return nil
}

func mountTmpfs(dst string, size int64) error {
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	opts := "mode=1777"
	if size > 0 {
		opts += fmt.Sprintf(",size=%d", size)
	}
	return bootMount("tmpfs", dst, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, opts)
}

// maxTerminals bounds the pseudo-terminals open at once in a sandbox,
// cove's own terminals included.
const maxTerminals = 64

func setupDev(root string, cfg *BootConfig) error {
	dev := filepath.Join(root, "dev")
	if err := os.Mkdir(dev, 0o755); err != nil {
		return err
	}
	for _, d := range devices {
		src := "/dev/" + d
		if _, err := os.Stat(src); err != nil {
			continue
		}
		dst := filepath.Join(dev, d)
		if err := makeMountpoint(dst, false); err != nil {
			return err
		}
		if err := bootMount(src, dst, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("binding %s: %w", src, err)
		}
		if err := setAttr(dst, unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NOEXEC, 0); err != nil {
			return err
		}
	}
	links := map[string]string{
		"fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
		"stderr": "/proc/self/fd/2", "ptmx": "pts/ptmx",
	}
	for name, target := range links {
		if err := os.Symlink(target, filepath.Join(dev, name)); err != nil {
			return err
		}
	}
	pts := filepath.Join(dev, "pts")
	if err := os.Mkdir(pts, 0o755); err != nil {
		return err
	}
	// Every devpts instance but the host's own takes its terminals from
	// one pool of the kernel's (kernel.pty.max less kernel.pty.reserve,
	// 3072 by default), shared by all sandboxes and the host's
	// containers: without a bound of its own, one sandbox could hold all
	// of it, and no other could open a terminal.
	opts := fmt.Sprintf("newinstance,ptmxmode=0666,mode=0620,max=%d", maxTerminals)
	if err := bootMount("devpts", pts, "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, opts); err != nil {
		return fmt.Errorf("mounting devpts: %w", err)
	}
	return mountTmpfs(filepath.Join(dev, "shm"), cfg.TmpBytes)
}

func setupProc(root string) error {
	proc := filepath.Join(root, "proc")
	if err := os.Mkdir(proc, 0o555); err != nil {
		return err
	}
	if err := bootMount("proc", proc, "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mounting proc: %w", err)
	}
	// Nested user namespaces would give user code a fresh set of
	// capabilities to attack the kernel with; forbid them in this one.
	if err := os.WriteFile(filepath.Join(proc, "sys/user/max_user_namespaces"), []byte("0"), 0); err != nil {
		return fmt.Errorf("limiting user namespaces: %w", err)
	}
	null := filepath.Join(root, "dev", "null")
	for _, name := range maskedProc {
		p := filepath.Join(proc, name)
		if _, err := os.Lstat(p); err != nil {
			continue
		}
		if err := bootMount(null, p, "", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("masking /proc/%s: %w", name, err)
		}
	}
	// One empty read-only tmpfs masks every directory: the first one gets
	// it, the others a bind of it (a file system apiece would cost a
	// superblock to make and to tear down each).
	empty := ""
	for _, name := range maskedProcDirs {
		p := filepath.Join(proc, name)
		if fi, err := os.Lstat(p); err != nil || !fi.IsDir() {
			continue
		}
		var err error
		if empty == "" {
			err = bootMount("tmpfs", p, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=0,mode=0555")
			empty = p
		} else if err = bootMount(empty, p, "", unix.MS_BIND, ""); err == nil {
			err = setAttr(p, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC, 0)
		}
		if err != nil {
			return fmt.Errorf("masking /proc/%s: %w", name, err)
		}
	}
	sys := filepath.Join(proc, "sys")
	if err := bootMount(sys, sys, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("binding /proc/sys: %w", err)
	}
	return setAttr(sys, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC, 0)
}

// pivot makes root the root of this mount namespace and detaches the old
// root entirely, so nothing of the host stays reachable.
func pivot(root string) error {
	if err := unix.Chdir(root); err != nil {
		return err
	}
	if err := bootPivotRoot(".", "."); err != nil {
		return err
	}
	if err := bootUnmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detaching old root: %w", err)
	}
	return unix.Chdir("/")
}

// setupNetwork brings up the loopback interface of the sandbox's own network
// namespace; there is no other interface.
func setupNetwork() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return err
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP | unix.IFF_RUNNING)
	return unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
}

// dropForkThreadPrivileges empties the capability bounding and ambient sets
// of the calling thread, the one that forks user processes, so that no
// process started from it can ever regain a capability. Both sets are per
// thread and inherited from the forking thread.
func dropForkThreadPrivileges() error {
	for c := 0; c <= unix.CAP_LAST_CAP; c++ {
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && err != unix.EINVAL {
			return fmt.Errorf("dropping capability %d from the bounding set: %w", c, err)
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("clearing ambient capabilities: %w", err)
	}
	return nil
}

// dropPrivileges limits the capabilities of every thread of the agent to
// what it needs to start user processes and manage files.
func dropPrivileges() error {
	// The host started the agent with no supplementary groups, before it
	// had threads; every thread inherits that. Check rather than clear:
	// clearing on every thread costs as much as the capability change.
	if groups, err := unix.Getgroups(); err != nil || len(groups) > 0 {
		return fmt.Errorf("the agent has supplementary groups %v (%v)", groups, err)
	}
	return keepCapabilities(unix.CAP_CHOWN, unix.CAP_DAC_OVERRIDE, unix.CAP_FOWNER,
		unix.CAP_KILL, unix.CAP_SETUID, unix.CAP_SETGID)
}

func hostnameOrDefault(h string) string {
	h = strings.TrimSpace(h)
	if h == "" {
		return "cove"
	}
	return h
}
