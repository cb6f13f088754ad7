#!/usr/bin/env python3
# Probe: unshare(CLONE_NEWUSER).
# Why it matters: a new user namespace hands its creator a full set of
# capabilities inside it, which opens most of the kernel's namespaced attack
# surface (mounts, netfilter, ...) that has produced many root exploits.
# Expect: BLOCKED (EPERM from the seccomp filter, or ENOSPC/EPERM from a
# user-namespace limit).
import ctypes, errno, sys

libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWUSER = 0x10000000

if libc.unshare(CLONE_NEWUSER) == 0:
    print("ESCAPED: unshare(CLONE_NEWUSER) created a user namespace")
    sys.exit(3)
err = ctypes.get_errno()
print(f"BLOCKED: unshare(CLONE_NEWUSER) ({errno.errorcode.get(err, err)})")
