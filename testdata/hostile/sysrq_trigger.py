#!/usr/bin/env python3
# Probe: open /proc/sysrq-trigger for writing.
# Why it matters: a byte written there crashes, reboots or freezes the whole
# host. The sandbox masks it with /dev/null or a read-only bind.
# If it opens, the probe checks what it opened: /dev/null (the mask) is
# fine; the real file is an escape, and the probe writes zero bytes to it,
# which triggers nothing.
# Expect: BLOCKED (EROFS/EACCES, or masked by /dev/null).
import errno, os, stat, sys

try:
    fd = os.open("/proc/sysrq-trigger", os.O_WRONLY)
except OSError as e:
    print(f"BLOCKED: write /proc/sysrq-trigger ({errno.errorcode.get(e.errno, e.errno)})")
    sys.exit(0)
if stat.S_ISCHR(os.fstat(fd).st_mode):
    print("BLOCKED: write /proc/sysrq-trigger (masked by a character device)")
    sys.exit(0)
os.write(fd, b"")
print("ESCAPED: opened the real /proc/sysrq-trigger for writing")
sys.exit(3)
