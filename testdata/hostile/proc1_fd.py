#!/usr/bin/env python3
# Probe: list /proc/1/fd and open /proc/1/mem, the agent's descriptors and
# memory.
# Why it matters: the agent holds the socket to the host; its descriptors
# and memory are the way to hijack the only door out of the sandbox. Both
# need ptrace access to PID 1.
# Expect: BLOCKED (EACCES).
import errno, os, sys

errs = set()
try:
    fds = os.listdir("/proc/1/fd")
except OSError as e:
    errs.add(errno.errorcode.get(e.errno, str(e.errno)))
else:
    print(f"ESCAPED: listed /proc/1/fd ({len(fds)} descriptors)")
    sys.exit(3)
try:
    fd = os.open("/proc/1/mem", os.O_RDONLY)
except OSError as e:
    errs.add(errno.errorcode.get(e.errno, str(e.errno)))
else:
    os.close(fd)
    print("ESCAPED: opened /proc/1/mem")
    sys.exit(3)
print(f"BLOCKED: PID 1's descriptors and memory ({'/'.join(sorted(errs))})")
