#!/usr/bin/env python3
# Probe: mount a tmpfs on a fresh directory under /tmp with mount(2).
# Why it matters: a process that can mount can hide files, remount paths
# writable and cover or uncover the /proc entries the sandbox masked.
# Mounting needs CAP_SYS_ADMIN over the mount namespace, and the seccomp
# filter refuses mount(2) outright.
# Expect: BLOCKED (EPERM). Harmless on a bare host: the mount is undone.
import ctypes, errno, os, sys, tempfile

libc = ctypes.CDLL(None, use_errno=True)
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
MNT_DETACH = 2

target = tempfile.mkdtemp(prefix="cove-mount-", dir="/tmp")
try:
    r = libc.mount(b"tmpfs", target.encode(), b"tmpfs", 0, b"size=1m")
    err = ctypes.get_errno()
    if r == 0:
        libc.umount2(target.encode(), MNT_DETACH)
        print("ESCAPED: mounted a tmpfs on a directory in /tmp")
        sys.exit(3)
    print(f"BLOCKED: mount tmpfs ({errno.errorcode.get(err, err)})")
finally:
    os.rmdir(target)
