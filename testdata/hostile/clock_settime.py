#!/usr/bin/env python3
# Probe: set the system clock.
# Why it matters: CLOCK_REALTIME is not namespaced; changing it moves the
# host's clock, breaking TLS, logs, timers and every other sandbox. It needs
# CAP_SYS_TIME.
# First settimeofday(NULL, NULL), which the kernel answers with its
# CAP_SYS_TIME check and otherwise does nothing; then clock_settime to the
# time just read (a change of microseconds). COVE_HOSTILE_DRYRUN=1 skips the
# second call.
# Expect: BLOCKED (EPERM).
import ctypes, errno, os, sys

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
SYS_settimeofday, SYS_clock_gettime, SYS_clock_settime = 164, 228, 227
CLOCK_REALTIME = 0


def name(e):
    return errno.errorcode.get(e, str(e))


r = libc.syscall(ctypes.c_long(SYS_settimeofday), None, None)
if r == 0:
    print("ESCAPED: settimeofday passed the CAP_SYS_TIME check")
    sys.exit(3)
tod_err = name(ctypes.get_errno())

if os.environ.get("COVE_HOSTILE_DRYRUN") == "1":
    print(f"BLOCKED: set the clock (settimeofday: {tod_err}; dry run, clock_settime skipped)")
    sys.exit(0)
ts = (ctypes.c_long * 2)()
libc.syscall(ctypes.c_long(SYS_clock_gettime), ctypes.c_long(CLOCK_REALTIME), ts)
r = libc.syscall(ctypes.c_long(SYS_clock_settime), ctypes.c_long(CLOCK_REALTIME), ts)
if r == 0:
    print("ESCAPED: clock_settime(CLOCK_REALTIME) succeeded")
    sys.exit(3)
print(f"BLOCKED: set the clock (settimeofday: {tod_err}, clock_settime: {name(ctypes.get_errno())})")
