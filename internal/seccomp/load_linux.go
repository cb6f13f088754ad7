package seccomp

import (
	"fmt"
	"runtime"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Program is a compiled filter, ready to install. Compiling takes a few
// hundred microseconds, so a caller can do it while it does other setup.
type Program struct {
	filter []unix.SockFilter
}

// Compile builds and assembles Filter(opts).
func Compile(opts Options) (*Program, error) {
	insts, err := Filter(opts)
	if err != nil {
		return nil, err
	}
	raw, err := bpf.Assemble(insts)
	if err != nil {
		return nil, fmt.Errorf("assembling BPF: %w", err)
	}
	prog := make([]unix.SockFilter, len(raw))
	for i, ins := range raw {
		prog[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	return &Program{filter: prog}, nil
}

// Load sets no_new_privs and installs Filter(opts) on every thread of the
// process (SECCOMP_FILTER_FLAG_TSYNC); processes started afterwards inherit
// both. Call it once, after the last mount and before running user code: it
// cannot be undone, and the filter refuses mount, unshare and the like from
// then on.
func Load(opts Options) error {
	p, err := Compile(opts)
	if err != nil {
		return fmt.Errorf("loading seccomp filter: %w", err)
	}
	return p.Load()
}

// Load installs the program as Load(opts) does.
func (p *Program) Load() error {
	if err := p.install(); err != nil {
		return fmt.Errorf("loading seccomp filter: %w", err)
	}
	return nil
}

// install uses the seccomp syscall directly: the kernel reports a thread it
// could not synchronise as a positive return value with no errno, in which
// case nothing was installed, and that must not pass for success.
func (p *Program) install() error {
	prog := p.filter
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
