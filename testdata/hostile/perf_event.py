#!/usr/bin/env python3
# Probe: perf_event_open for a software CPU-clock counter on this process,
# user space only (the least privileged kind of event).
# Why it matters: perf events leak kernel and cross-process information and
# have had privilege-escalation bugs; the filter must refuse the call even
# where the perf_event_paranoid sysctl would allow it.
# Expect: BLOCKED (EPERM or EACCES).
import ctypes, errno, os, struct, sys

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
SYS_perf_event_open = 298
PERF_TYPE_SOFTWARE, PERF_COUNT_SW_CPU_CLOCK = 1, 0
PERF_FLAG_FD_CLOEXEC = 8
DISABLED, EXCLUDE_KERNEL, EXCLUDE_HV = 1 << 0, 1 << 5, 1 << 6

# struct perf_event_attr: type, size, config, sample_period, sample_type,
# read_format, flag bits; the rest zero. 112 is PERF_ATTR_SIZE_VER5.
attr = ctypes.create_string_buffer(
    struct.pack("IIQQQQQ", PERF_TYPE_SOFTWARE, 112, PERF_COUNT_SW_CPU_CLOCK, 0, 0, 0,
                DISABLED | EXCLUDE_KERNEL | EXCLUDE_HV), 128)
fd = libc.syscall(ctypes.c_long(SYS_perf_event_open), attr, ctypes.c_long(0), ctypes.c_long(-1),
                  ctypes.c_long(-1), ctypes.c_long(PERF_FLAG_FD_CLOEXEC))
if fd >= 0:
    os.close(fd)
    print("ESCAPED: perf_event_open opened a counter")
    sys.exit(3)
err = ctypes.get_errno()
print(f"BLOCKED: perf_event_open ({errno.errorcode.get(err, err)})")
