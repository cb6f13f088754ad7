package agent

import (
	"errors"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// TestBootSyscallErrors checks that the raw mount calls report the
// kernel's errors as unix.Mount and its kin do, without mounting anything.
func TestBootSyscallErrors(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("without root the kernel refuses these calls before it looks at their arguments")
	}
	missing := "/nonexistent-cove-test/dir"
	cases := []struct {
		name string
		err  error
		want unix.Errno
	}{
		{"mount", bootMount("tmpfs", missing, "tmpfs", 0, ""), unix.ENOENT},
		{"mount_nul_in_string", bootMount("a\x00b", missing, "tmpfs", 0, ""), unix.EINVAL},
		{"mount_setattr", bootMountSetattr(unix.AT_FDCWD, missing, 0, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}), unix.ENOENT},
		{"move_mount", bootMoveMount(-1, "", unix.AT_FDCWD, "/", unix.MOVE_MOUNT_F_EMPTY_PATH), unix.EBADF},
		{"pivot_root", bootPivotRoot(missing, missing), unix.ENOENT},
		{"umount2", bootUnmount(missing, unix.MNT_DETACH), unix.ENOENT},
	}
	for _, c := range cases {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, c.err, c.want)
		}
	}
}
