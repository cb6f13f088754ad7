#!/usr/bin/env python3
# Probe: create a userfaultfd, with the system call (user-mode faults only,
# the mode unprivileged users may use) and through /dev/userfaultfd.
# Why it matters: userfaultfd lets a program stall the kernel at a chosen
# page fault, which turns many kernel race conditions into reliable exploits.
# Expect: BLOCKED (EPERM from the filter; /dev/userfaultfd absent).
import ctypes, errno, os, sys

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
SYS_userfaultfd = 323
UFFD_USER_MODE_ONLY = 1


def name(e):
    return errno.errorcode.get(e, str(e))


fd = libc.syscall(ctypes.c_long(SYS_userfaultfd),
                  ctypes.c_long(os.O_CLOEXEC | os.O_NONBLOCK | UFFD_USER_MODE_ONLY))
if fd >= 0:
    os.close(fd)
    print("ESCAPED: userfaultfd created a fault handler")
    sys.exit(3)
sys_err = name(ctypes.get_errno())

try:
    fd = os.open("/dev/userfaultfd", os.O_RDWR | os.O_CLOEXEC)
except OSError as e:
    dev_err = name(e.errno)
else:
    os.close(fd)
    print("ESCAPED: opened /dev/userfaultfd")
    sys.exit(3)
print(f"BLOCKED: userfaultfd (syscall: {sys_err}, /dev/userfaultfd: {dev_err})")
