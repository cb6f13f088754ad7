#!/usr/bin/env python3
# Probe: mount a tmpfs with the new mount API (fsopen, fsconfig, fsmount,
# move_mount) instead of mount(2).
# Why it matters: a filter that only refuses mount(2) leaves this second door
# open; every step needs CAP_SYS_ADMIN and the filter must refuse them too.
# Expect: BLOCKED (EPERM or ENOSYS). Harmless on a bare host: the mount is undone.
import ctypes, errno, os, sys, tempfile

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]

SYS_move_mount, SYS_fsopen, SYS_fsconfig, SYS_fsmount = 429, 430, 431, 432
FSCONFIG_CMD_CREATE = 6
MOVE_MOUNT_F_EMPTY_PATH = 0x4
AT_FDCWD = -100
MNT_DETACH = 2


def syscall(nr, *args):
    args = [ctypes.c_long(a) if isinstance(a, int) else a for a in args]
    r = libc.syscall(ctypes.c_long(nr), *args)
    return r, (ctypes.get_errno() if r == -1 else 0)


def blocked(step, err):
    print(f"BLOCKED: new mount API, {step} ({errno.errorcode.get(err, err)})")
    sys.exit(0)


target = tempfile.mkdtemp(prefix="cove-fsmount-", dir="/tmp")
try:
    fsfd, err = syscall(SYS_fsopen, b"tmpfs", 0)
    if fsfd < 0:
        blocked("fsopen", err)
    r, err = syscall(SYS_fsconfig, fsfd, FSCONFIG_CMD_CREATE, None, None, 0)
    if r < 0:
        blocked("fsconfig create", err)
    mfd, err = syscall(SYS_fsmount, fsfd, 0, 0)
    if mfd < 0:
        blocked("fsmount", err)
    r, err = syscall(SYS_move_mount, mfd, b"", AT_FDCWD, target.encode(), MOVE_MOUNT_F_EMPTY_PATH)
    if r < 0:
        blocked("move_mount", err)
    libc.umount2(target.encode(), MNT_DETACH)
    print("ESCAPED: attached a new tmpfs with fsopen/fsmount/move_mount")
    sys.exit(3)
finally:
    os.rmdir(target)
