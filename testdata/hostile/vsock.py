#!/usr/bin/env python3
# Probe: create an AF_VSOCK socket.
# Why it matters: vsock reaches the hypervisor and the host's services when
# the sandbox host is itself a VM, bypassing the network namespace entirely.
# cove's filter refuses the address family. (No connection is attempted.)
# Expect: BLOCKED (EPERM or EAFNOSUPPORT).
import errno, socket, sys

AF_VSOCK = 40
try:
    s = socket.socket(AF_VSOCK, socket.SOCK_STREAM)
except OSError as e:
    print(f"BLOCKED: AF_VSOCK socket ({errno.errorcode.get(e.errno, e.errno)})")
    sys.exit(0)
s.close()
print("ESCAPED: created an AF_VSOCK socket")
sys.exit(3)
