#!/usr/bin/env python3
# Probe: use the kernel keyring: join a new session keyring with keyctl and
# add a key with add_key.
# Why it matters: keyrings are not namespaced, so keys leak between
# containers of the same uid, and the keyring code has had privilege-
# escalation bugs. cove's filter refuses keyctl, add_key and request_key.
# Expect: BLOCKED (EPERM or ENOSYS).
import ctypes, errno, sys

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
SYS_add_key, SYS_keyctl = 248, 250
KEYCTL_JOIN_SESSION_KEYRING = 1
KEY_SPEC_PROCESS_KEYRING = -2


def name(e):
    return errno.errorcode.get(e, str(e))


r = libc.syscall(ctypes.c_long(SYS_keyctl), ctypes.c_long(KEYCTL_JOIN_SESSION_KEYRING), None)
if r >= 0:
    print("ESCAPED: keyctl(KEYCTL_JOIN_SESSION_KEYRING) created a keyring")
    sys.exit(3)
join_err = name(ctypes.get_errno())

# The process keyring dies with this process, so nothing is left behind.
r = libc.syscall(ctypes.c_long(SYS_add_key), b"user", b"cove-probe", b"x", ctypes.c_long(1),
                 ctypes.c_long(KEY_SPEC_PROCESS_KEYRING))
if r >= 0:
    print("ESCAPED: add_key added a key")
    sys.exit(3)
print(f"BLOCKED: keyrings (keyctl: {join_err}, add_key: {name(ctypes.get_errno())})")
