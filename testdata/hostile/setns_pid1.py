#!/usr/bin/env python3
# Probe: join PID 1's namespaces through /proc/1/ns/* with setns.
# Why it matters: PID 1 is cove's agent. Opening its namespace files needs
# ptrace access to it (it is non-dumpable and runs as another uid), and
# setns needs CAP_SYS_ADMIN; the filter refuses setns as well.
# Expect: BLOCKED (EACCES opening, or EPERM from setns).
import ctypes, errno, os, sys

libc = ctypes.CDLL(None, use_errno=True)
NAMESPACES = [("mnt", 0x00020000), ("net", 0x40000000), ("pid", 0x20000000),
              ("ipc", 0x08000000), ("uts", 0x04000000), ("cgroup", 0x02000000)]

reasons = set()
for ns, flag in NAMESPACES:
    try:
        fd = os.open(f"/proc/1/ns/{ns}", os.O_RDONLY)
    except OSError as e:
        reasons.add(f"open: {errno.errorcode.get(e.errno, e.errno)}")
        continue
    r = libc.setns(fd, flag)
    err = ctypes.get_errno()
    os.close(fd)
    if r == 0:
        print(f"ESCAPED: setns into PID 1's {ns} namespace")
        sys.exit(3)
    reasons.add(f"setns: {errno.errorcode.get(err, err)}")
print(f"BLOCKED: setns into PID 1's namespaces ({', '.join(sorted(reasons))})")
