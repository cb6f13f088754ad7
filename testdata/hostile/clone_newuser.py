#!/usr/bin/env python3
# Probe: create a user namespace with the raw clone and clone3 system calls
# rather than unshare.
# Why it matters: a filter that inspects unshare's flags but not clone's (or
# lets clone3 through, whose flags seccomp cannot read) still hands out a
# user namespace. clone3 should fail with ENOSYS so libc falls back to clone,
# and clone with CLONE_NEWUSER should fail with EPERM.
# Expect: BLOCKED.
import ctypes, errno, os, struct, sys

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
SYS_clone, SYS_clone3 = 56, 435
CLONE_NEWUSER = 0x10000000
SIGCHLD = 17


def name(e):
    return errno.errorcode.get(e, str(e))


def outcome(pid, how):
    """pid is the raw syscall's result: 0 in the child, > 0 in the parent."""
    if pid == 0:
        os._exit(0)  # the child: leave at once, without Python's cleanup
    if pid > 0:
        os.waitpid(pid, 0)
        print(f"ESCAPED: {how} with CLONE_NEWUSER started a child in a new user namespace")
        sys.exit(3)
    return name(ctypes.get_errno())


pid = libc.syscall(ctypes.c_long(SYS_clone), ctypes.c_long(CLONE_NEWUSER | SIGCHLD),
                   ctypes.c_long(0), ctypes.c_long(0), ctypes.c_long(0), ctypes.c_long(0))
clone_err = outcome(pid, "clone")

# struct clone_args (version 0, 64 bytes): flags, pidfd, child_tid,
# parent_tid, exit_signal, stack, stack_size, tls.
args = ctypes.create_string_buffer(struct.pack("8Q", CLONE_NEWUSER, 0, 0, 0, SIGCHLD, 0, 0, 0), 64)
pid = libc.syscall(ctypes.c_long(SYS_clone3), args, ctypes.c_long(64))
clone3_err = outcome(pid, "clone3")

print(f"BLOCKED: clone with CLONE_NEWUSER ({clone_err}), clone3 ({clone3_err})")
