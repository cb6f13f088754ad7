#!/usr/bin/env python3
# Probe: sethostname and setdomainname, each to its current value (so
# nothing changes even where the call succeeds).
# Why it matters: both need CAP_SYS_ADMIN; on a host sharing its UTS
# namespace they rename the machine, and success shows the process holds
# privileges it must not have.
# Expect: BLOCKED (EPERM).
import ctypes, errno, os, sys

libc = ctypes.CDLL(None, use_errno=True)
libc.sethostname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
libc.setdomainname.argtypes = [ctypes.c_char_p, ctypes.c_size_t]

host = os.uname().nodename.encode()
try:
    with open("/proc/sys/kernel/domainname", "rb") as f:
        domain = f.read().strip()
except OSError:
    domain = b"(none)"

errs = []
for label, call, value in [("sethostname", libc.sethostname, host),
                           ("setdomainname", libc.setdomainname, domain)]:
    if call(value, len(value)) == 0:
        print(f"ESCAPED: {label} succeeded")
        sys.exit(3)
    err = ctypes.get_errno()
    errs.append(f"{label}: {errno.errorcode.get(err, err)}")
print(f"BLOCKED: set host names ({', '.join(errs)})")
