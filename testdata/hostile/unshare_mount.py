#!/usr/bin/env python3
# Probe: unshare(CLONE_NEWNS).
# Why it matters: a private mount namespace is the first step to remounting
# and unmasking things; it needs CAP_SYS_ADMIN, which the sandboxed user
# must not have.
# Expect: BLOCKED (EPERM).
import ctypes, errno, sys

libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNS = 0x00020000

if libc.unshare(CLONE_NEWNS) == 0:
    print("ESCAPED: unshare(CLONE_NEWNS) created a mount namespace")
    sys.exit(3)
err = ctypes.get_errno()
print(f"BLOCKED: unshare(CLONE_NEWNS) ({errno.errorcode.get(err, err)})")
