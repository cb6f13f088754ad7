package agent

import (
	"fmt"
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
	_, _, errno := psx.Syscall3(unix.SYS_CAPSET,
		uintptr(unsafe.Pointer(&hdr)), uintptr(unsafe.Pointer(&data[0])), 0)
	if errno != 0 {
		return fmt.Errorf("capset: %w", errno)
	}
	return nil
}
