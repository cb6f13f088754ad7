#!/usr/bin/env python3
# Probe: read /proc/kcore, an ELF image of the kernel's memory.
# Why it matters: it exposes all of physical memory to a reader with
# CAP_SYS_RAWIO, and its presence alone leaks the memory layout. The sandbox
# masks it with /dev/null (or leaves it out).
# Expect: BLOCKED (masked: reads as an empty character device; or ENOENT).
import errno, os, stat, sys

try:
    fd = os.open("/proc/kcore", os.O_RDONLY)
except OSError as e:
    print(f"BLOCKED: read /proc/kcore ({errno.errorcode.get(e.errno, e.errno)})")
    sys.exit(0)
st = os.fstat(fd)
try:
    head = os.read(fd, 4)
except OSError as e:
    print(f"BLOCKED: read /proc/kcore ({errno.errorcode.get(e.errno, e.errno)} on read)")
    sys.exit(0)
if head == b"\x7fELF":
    print("ESCAPED: read the kernel's ELF core image from /proc/kcore")
    sys.exit(3)
kind = "masked by a character device" if stat.S_ISCHR(st.st_mode) else "empty"
print(f"BLOCKED: read /proc/kcore ({kind})")
