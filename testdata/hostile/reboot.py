#!/usr/bin/env python3
# Probe: call reboot(2).
# Why it matters: with CAP_SYS_BOOT it restarts or powers off the machine.
# The probe passes wrong magic numbers, so the call can never reboot
# anything: the kernel checks CAP_SYS_BOOT first (EPERM) and the magic
# numbers second (EINVAL). EINVAL therefore means the privilege was there.
# Expect: BLOCKED (EPERM).
import ctypes, errno, sys

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
SYS_reboot = 169

r = libc.syscall(ctypes.c_long(SYS_reboot), ctypes.c_long(0), ctypes.c_long(0),
                 ctypes.c_long(0), None)
err = ctypes.get_errno()
if r == 0 or err == errno.EINVAL:
    print("ESCAPED: reboot passed the CAP_SYS_BOOT check (EINVAL on bad magic)")
    sys.exit(3)
print(f"BLOCKED: reboot ({errno.errorcode.get(err, err)})")
