#!/usr/bin/env python3
# Probe: trace one's own children: PTRACE_ATTACH to a forked child, and
# PTRACE_TRACEME from a forked child.
# Why it matters: even between processes of the same user, ptrace rewrites
# another process's memory and system calls; it has been used to slip past
# seccomp filters, and cove's filter refuses it entirely.
# Expect: BLOCKED (EPERM) for both.
import ctypes, errno, os, signal, sys, time

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
SYS_ptrace = 101
PTRACE_TRACEME, PTRACE_ATTACH, PTRACE_DETACH = 0, 16, 17


def ptrace(req, pid):
    r = libc.syscall(ctypes.c_long(SYS_ptrace), ctypes.c_long(req), ctypes.c_long(pid),
                     ctypes.c_long(0), ctypes.c_long(0))
    return r, (ctypes.get_errno() if r == -1 else 0)


def name(e):
    return errno.errorcode.get(e, str(e))


# 1. PTRACE_ATTACH to a sleeping child.
child = os.fork()
if child == 0:
    time.sleep(10)
    os._exit(0)
r, attach_err = ptrace(PTRACE_ATTACH, child)
if r == 0:
    os.waitpid(child, 0)
    ptrace(PTRACE_DETACH, child)
os.kill(child, signal.SIGKILL)
os.waitpid(child, 0)
if r == 0:
    print("ESCAPED: PTRACE_ATTACH to a child process")
    sys.exit(3)

# 2. PTRACE_TRACEME in a child; the child's exit status carries the errno.
child = os.fork()
if child == 0:
    r, err = ptrace(PTRACE_TRACEME, 0)
    os._exit(0 if r == 0 else min(err, 255) or 255)
_, status = os.waitpid(child, 0)
code = os.waitstatus_to_exitcode(status)
if code == 0:
    print("ESCAPED: PTRACE_TRACEME in a child process")
    sys.exit(3)
print(f"BLOCKED: ptrace between own processes (attach: {name(attach_err)}, traceme: {name(code)})")
