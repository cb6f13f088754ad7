#!/usr/bin/env python3
# Probe: Linux native AIO (io_setup).
# Why it matters: every AIO context reserves its events from one count that
# the whole host shares (fs.aio-max-nr, 65536 by default) and that no cgroup
# or rlimit bounds. A single io_setup(65536) from a sandbox left every other
# process on the host, and every other sandbox, failing io_setup with
# EAGAIN for as long as the context lived. cove's filter refuses the AIO
# calls (glibc's POSIX AIO uses threads, not these).
# The probe asks for one event only, and destroys the context at once.
# Expect: BLOCKED (EPERM or ENOSYS).
import ctypes, errno, os, sys

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
SYS_io_setup = 206
SYS_io_destroy = 207

ctx = ctypes.c_ulong(0)
r = libc.syscall(ctypes.c_long(SYS_io_setup), ctypes.c_long(1), ctypes.byref(ctx))
if r == 0:
    libc.syscall(ctypes.c_long(SYS_io_destroy), ctx)
    print("ESCAPED: io_setup created an AIO context (events reserved from the host-wide fs.aio-max-nr)")
    sys.exit(3)
err = ctypes.get_errno()
print(f"BLOCKED: io_setup ({errno.errorcode.get(err, err)})")
