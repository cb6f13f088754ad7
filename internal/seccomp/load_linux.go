package seccomp

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Load sets no_new_privs and installs Filter(opts) on every thread of the
// process (SECCOMP_FILTER_FLAG_TSYNC); processes started afterwards inherit
// both. Call it once, after the last mount and before running user code: it
// cannot be undone, and the filter refuses mount, unshare and the like from
// then on.
func Load(opts Options) error {
	if err := load(opts); err != nil {
		return fmt.Errorf("loading seccomp filter: %w", err)
	}
	return nil
}

// load installs the filter with the seccomp syscall directly: the kernel
// reports a thread it could not synchronise as a positive return value with
// no errno, in which case nothing was installed, and that must not pass for
// success.
func load(opts Options) error {
	insts, err := Filter(opts)
	if err != nil {
		return err
	}
	raw, err := bpf.Assemble(insts)
	if err != nil {
		return fmt.Errorf("assembling BPF: %w", err)
	}
	prog := make([]unix.SockFilter, len(raw))
	for i, ins := range raw {
		prog[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}

	// no_new_privs belongs to a thread: set it on the thread that installs
	// the filter, and TSYNC copies both to the process's other threads.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("setting no_new_privs: %w", err)
	}
	tid, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	if errno != 0 {
		return fmt.Errorf("seccomp(SECCOMP_SET_MODE_FILTER): %w", errno)
	}
	if tid != 0 {
		return fmt.Errorf("thread %d could not be synchronised to the filter", tid)
	}
	return nil
}
