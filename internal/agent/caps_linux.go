package agent

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
	"kernel.org/pub/linux/libs/security/libcap/psx"
)

// keepCapabilities sets the permitted and effective capability sets of every
// thread of the agent to exactly caps, and the inheritable set to none.
// capset is per thread, so it goes through psx, which runs it on every
// thread (with or without cgo).
func keepCapabilities(caps ...int) error {
	var data [2]unix.CapUserData
	for _, c := range caps {
		data[c/32].Permitted |= 1 << (uint(c) % 32)
		data[c/32].Effective |= 1 << (uint(c) % 32)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	defer onOneCPU()()
	_, _, errno := psx.Syscall3(unix.SYS_CAPSET,
		uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0)
	if errno != 0 {
		return fmt.Errorf("capset: %w", errno)
	}
	return nil
}

// onOneCPU pins every thread of the process to the CPU the caller runs on,
// and returns what undoes it. An all-thread syscall (psx) signals each
// thread and spins, yielding, until all have run the call: on a busy
// machine a thread queued on another CPU can keep it spinning for
// milliseconds, while on the caller's own CPU the yield hands it the CPU.
// Best effort: a thread that cannot be moved only makes the wait longer.
func onOneCPU() (restore func()) {
	runtime.LockOSThread()
	var cpu uint32
	_, _, errno := unix.RawSyscall(unix.SYS_GETCPU, uintptr(unsafe.Pointer(&cpu)), 0, 0)
	tids, err := os.ReadDir("/proc/thread-self/..")
	if errno != 0 || err != nil {
		runtime.UnlockOSThread()
		return func() {}
	}
	var one unix.CPUSet
	one.Set(int(cpu))
	type saved struct {
		tid  int
		mask unix.CPUSet
	}
	var moved []saved
	for _, e := range tids {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		var old unix.CPUSet
		if unix.SchedGetaffinity(tid, &old) != nil || unix.SchedSetaffinity(tid, &one) != nil {
			continue
		}
		moved = append(moved, saved{tid, old})
	}
	return func() {
		for _, m := range moved {
			unix.SchedSetaffinity(m.tid, &m.mask)
		}
		runtime.UnlockOSThread()
	}
}
