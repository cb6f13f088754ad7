#!/usr/bin/env python3
# Probe: make a system call through the x32 ABI (getpid with bit 30 set).
# Why it matters: a seccomp filter written for x86_64 numbers is bypassed if
# the same calls can be made through another ABI, so the filter must refuse
# every non-native one. The call runs in a child in case the filter kills
# the process (SIGSYS), which also counts as refused.
# Expect: BLOCKED (ENOSYS/EPERM, or the child killed by SIGSYS).
import ctypes, errno, os, signal, sys

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
X32_SYSCALL_BIT = 0x40000000
SYS_getpid = 39


def in_child(fn):
    """Run fn() in a forked child; return ("ret", its result as text) or
    ("signal", the name of the signal that killed the child)."""
    rd, wr = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.write(wr, str(fn()).encode())
        finally:
            os._exit(0)
    os.close(wr)
    data = os.read(rd, 256).decode()
    os.close(rd)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return "signal", signal.Signals(os.WTERMSIG(status)).name
    return "ret", data


def x32_getpid():
    r = libc.syscall(ctypes.c_long(X32_SYSCALL_BIT | SYS_getpid))
    return r if r >= 0 else -ctypes.get_errno()


WHAT = "x32 getpid"
kind, value = in_child(x32_getpid)
if kind == "signal":
    print(f"BLOCKED: {WHAT} (killed by {value})")
elif not value.lstrip("-").isdigit():
    sys.exit(f"probe error: {value or 'the child failed'}")  # not a verdict either way
elif int(value) > 0:
    print(f"ESCAPED: {WHAT} returned a pid")
    sys.exit(3)
else:
    print(f"BLOCKED: {WHAT} ({errno.errorcode.get(-int(value), value)})")
