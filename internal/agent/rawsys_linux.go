package agent

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The mount calls of the agent's boot, made without the Go scheduler's
// system-call bookkeeping.
//
// The agent boots on one goroutine, with one P (GOMAXPROCS=1) and nothing
// else to run. A call through unix.Syscall marks the P as in a system call;
// when one outlasts a tick of the runtime's monitor thread (20 µs, which
// mounts do), the monitor hands the P to another thread, which finds
// nothing to run and parks again, and the monitor, having found work, keeps
// waking at its shortest interval. The thirty-odd mount calls of a boot go
// through these instead: the agent's CPU per sandbox fell by about 0.1 to
// 0.25 ms (3 to 6%; lower in 9 of 11 alternating runs of cove bench under
// perf), and the monitor thread's share of it by a third.
//
// Use them only while the agent boots: a raw system call keeps its P, so
// no other goroutine runs until it returns.

func errnoOrNil(e unix.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// cstrings converts strings for a system call's arguments.
func cstrings(ss ...string) ([]*byte, error) {
	out := make([]*byte, len(ss))
	for i, s := range ss {
		p, err := unix.BytePtrFromString(s)
		if err != nil {
			return nil, err
		}
		out[i] = p
	}
	return out, nil
}

// bootMount is unix.Mount.
func bootMount(source, target, fstype string, flags uintptr, data string) error {
	p, err := cstrings(source, target, fstype, data)
	if err != nil {
		return err
	}
	_, _, e := unix.RawSyscall6(unix.SYS_MOUNT, uintptr(unsafe.Pointer(p[0])), uintptr(unsafe.Pointer(p[1])),
		uintptr(unsafe.Pointer(p[2])), flags, uintptr(unsafe.Pointer(p[3])), 0)
	return errnoOrNil(e)
}

// bootMountSetattr is unix.MountSetattr.
func bootMountSetattr(dirfd int, path string, flags uint, attr *unix.MountAttr) error {
	p, err := cstrings(path)
	if err != nil {
		return err
	}
	_, _, e := unix.RawSyscall6(unix.SYS_MOUNT_SETATTR, uintptr(dirfd), uintptr(unsafe.Pointer(p[0])), uintptr(flags),
		uintptr(unsafe.Pointer(attr)), unsafe.Sizeof(*attr), 0)
	return errnoOrNil(e)
}

// bootMoveMount is unix.MoveMount.
func bootMoveMount(fromDirfd int, fromPath string, toDirfd int, toPath string, flags int) error {
	p, err := cstrings(fromPath, toPath)
	if err != nil {
		return err
	}
	_, _, e := unix.RawSyscall6(unix.SYS_MOVE_MOUNT, uintptr(fromDirfd), uintptr(unsafe.Pointer(p[0])),
		uintptr(toDirfd), uintptr(unsafe.Pointer(p[1])), uintptr(flags), 0)
	return errnoOrNil(e)
}

// bootPivotRoot is unix.PivotRoot.
func bootPivotRoot(newroot, putold string) error {
	p, err := cstrings(newroot, putold)
	if err != nil {
		return err
	}
	_, _, e := unix.RawSyscall(unix.SYS_PIVOT_ROOT, uintptr(unsafe.Pointer(p[0])), uintptr(unsafe.Pointer(p[1])), 0)
	return errnoOrNil(e)
}

// bootUnmount is unix.Unmount.
func bootUnmount(target string, flags int) error {
	p, err := cstrings(target)
	if err != nil {
		return err
	}
	_, _, e := unix.RawSyscall(unix.SYS_UMOUNT2, uintptr(unsafe.Pointer(p[0])), uintptr(flags), 0)
	return errnoOrNil(e)
}
