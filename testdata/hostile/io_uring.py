#!/usr/bin/env python3
# Probe: io_uring_setup.
# Why it matters: io_uring has been a steady source of kernel privilege
# escalations, and its operations bypass seccomp (they are not system calls),
# so cove's filter must refuse io_uring_setup, io_uring_enter and
# io_uring_register.
# Expect: BLOCKED (EPERM or ENOSYS).
import ctypes, errno, os, sys

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
SYS_io_uring_setup = 425

params = ctypes.create_string_buffer(120)  # struct io_uring_params, zeroed
fd = libc.syscall(ctypes.c_long(SYS_io_uring_setup), ctypes.c_long(4), params)
if fd >= 0:
    os.close(fd)
    print("ESCAPED: io_uring_setup created a ring")
    sys.exit(3)
err = ctypes.get_errno()
print(f"BLOCKED: io_uring_setup ({errno.errorcode.get(err, err)})")
