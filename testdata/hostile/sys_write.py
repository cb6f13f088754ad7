#!/usr/bin/env python3
# Probe: create a file in /sys and open writable sysfs attributes.
# Why it matters: /sys/kernel/uevent_helper names a program the kernel runs
# as host root, and other attributes change global kernel behaviour. /sys
# must be absent, empty or read-only in the sandbox.
# Files are only opened, never written: the kernel checks permission and the
# read-only mount at open, so this is harmless on a bare host.
# Expect: BLOCKED (ENOENT, EROFS or EACCES).
import errno, os, sys

ATTRIBUTES = ["/sys/kernel/uevent_helper", "/sys/kernel/mm/transparent_hugepage/enabled",
              "/sys/kernel/mm/ksm/run", "/sys/power/state", "/sys/kernel/profiling"]


def name(e):
    return errno.errorcode.get(e, str(e))


errs = set()
probe = f"/sys/cove-probe-{os.getpid()}"
try:
    fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
except OSError as e:
    errs.add(name(e.errno))
else:
    os.close(fd)
    os.unlink(probe)
    print("ESCAPED: created a file in /sys")
    sys.exit(3)

for path in ATTRIBUTES:
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError as e:
        errs.add(name(e.errno))
        continue
    os.close(fd)
    print(f"ESCAPED: opened {path} for writing")
    sys.exit(3)
print(f"BLOCKED: write to /sys ({'/'.join(sorted(errs))})")
