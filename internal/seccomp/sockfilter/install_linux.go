package sockfilter

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Install sets no_new_privs and installs prog on every thread of the
// process (SECCOMP_FILTER_FLAG_TSYNC); processes started afterwards inherit
// both. It cannot be undone.
func Install(prog []Instruction) error {
	if len(prog) == 0 {
		return fmt.Errorf("no seccomp program")
	}
	filter := make([]unix.SockFilter, len(prog))
	for i, in := range prog {
		filter[i] = unix.SockFilter{Code: in.Code, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	fprog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}

	// no_new_privs belongs to a thread: set it on the thread that installs
	// the filter, and TSYNC copies both to the process's other threads.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("setting no_new_privs: %w", err)
	}
	// The seccomp syscall directly: the kernel reports a thread it could not
	// synchronise as a positive return value with no errno, in which case
	// nothing was installed, and that must not pass for success.
	tid, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(filter)
	if errno != 0 {
		return fmt.Errorf("seccomp(SECCOMP_SET_MODE_FILTER): %w", errno)
	}
	if tid != 0 {
		return fmt.Errorf("thread %d could not be synchronised to the filter", tid)
	}
	return nil
}
