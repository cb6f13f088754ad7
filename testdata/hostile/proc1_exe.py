#!/usr/bin/env python3
# Probe: open and read /proc/1/exe, the agent's own binary.
# Why it matters: a handle on the binary of a more privileged process is how
# CVE-2019-5736 overwrote runc on the host; even reading it gives an attacker
# the exact code to study. It needs ptrace access to PID 1.
# Expect: BLOCKED (EACCES).
import errno, sys

try:
    with open("/proc/1/exe", "rb") as f:
        head = f.read(4)
except OSError as e:
    print(f"BLOCKED: read /proc/1/exe ({errno.errorcode.get(e.errno, e.errno)})")
    sys.exit(0)
what = "an ELF binary" if head == b"\x7fELF" else f"{len(head)} bytes"
print(f"ESCAPED: read /proc/1/exe ({what})")
sys.exit(3)
