#!/usr/bin/env python3
# Probe: ptrace(PTRACE_ATTACH) to PID 1, cove's agent.
# Why it matters: a tracer can read and write the agent's memory and
# registers, take over the only door between the sandbox and the host, and
# steal its file descriptors. The filter refuses ptrace, and the agent is
# non-dumpable and runs as another uid.
# Expect: BLOCKED (EPERM).
# COVE_HOSTILE_DRYRUN=1 uses PTRACE_SEIZE, which runs the same permission
# checks but never stops the target, so a bare host's init is not paused.
import ctypes, errno, os, sys

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
SYS_ptrace = 101
PTRACE_ATTACH, PTRACE_DETACH, PTRACE_SEIZE = 16, 17, 0x4206


def ptrace(req, pid):
    r = libc.syscall(ctypes.c_long(SYS_ptrace), ctypes.c_long(req), ctypes.c_long(pid),
                     ctypes.c_long(0), ctypes.c_long(0))
    return r, (ctypes.get_errno() if r == -1 else 0)


dry = os.environ.get("COVE_HOSTILE_DRYRUN") == "1"
r, err = ptrace(PTRACE_SEIZE if dry else PTRACE_ATTACH, 1)
if r == 0:
    if not dry:
        os.waitpid(1, 0x40000000)  # __WALL: wait for the attach stop
        ptrace(PTRACE_DETACH, 1)
    # A seized tracee is released when this process exits.
    print(f"ESCAPED: {'PTRACE_SEIZE' if dry else 'PTRACE_ATTACH'} to PID 1")
    sys.exit(3)
print(f"BLOCKED: ptrace attach to PID 1 ({errno.errorcode.get(err, err)})")
