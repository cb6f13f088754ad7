#!/usr/bin/env python3
# Probe: make the workspace's own btrfs subvolume read-only with
# BTRFS_IOC_SUBVOL_SETFLAGS, which the kernel allows the owner of a
# subvolume's root, and the sandbox user owns /workspace.
# Why it matters: a read-only workspace fails every file operation of cove
# and the reset of a reused sandbox with EROFS, which cove can only read as
# its whole workspace volume gone read-only, and says so: "cove's operator
# must free space there and restart cove". cove's filter refuses the ioctl.
# Expect: BLOCKED (EPERM).
import errno, fcntl, os, struct, sys

BTRFS_IOC_SUBVOL_SETFLAGS = 0x4008941A
BTRFS_SUBVOL_RDONLY = 1 << 1

try:
    fd = os.open("/workspace", os.O_RDONLY | os.O_DIRECTORY)
    fcntl.ioctl(fd, BTRFS_IOC_SUBVOL_SETFLAGS, struct.pack("Q", BTRFS_SUBVOL_RDONLY))
except OSError as e:
    print(f"BLOCKED: making the workspace subvolume read-only ({errno.errorcode.get(e.errno, e.errno)})")
    sys.exit(0)
# Writable again, so that what follows the probe finds the workspace as it was.
fcntl.ioctl(fd, BTRFS_IOC_SUBVOL_SETFLAGS, struct.pack("Q", 0))
print("ESCAPED: the workspace subvolume became read-only")
sys.exit(3)
