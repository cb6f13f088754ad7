#!/usr/bin/env python3
# Probe: create an AF_ALG (kernel crypto API) socket and bind it to sha256.
# Why it matters: AF_ALG exposes the kernel's crypto code to user input and
# has had several exploitable bugs; cove's filter refuses the family.
# Expect: BLOCKED (EPERM or EAFNOSUPPORT).
import errno, socket, sys

AF_ALG = 38
try:
    s = socket.socket(AF_ALG, socket.SOCK_SEQPACKET, 0)
except OSError as e:
    print(f"BLOCKED: AF_ALG socket ({errno.errorcode.get(e.errno, e.errno)})")
    sys.exit(0)
try:
    s.bind(("hash", "sha256"))
except OSError as e:
    print(f"ESCAPED: created an AF_ALG socket (bind failed with {errno.errorcode.get(e.errno, e.errno)})")
    sys.exit(3)
print("ESCAPED: created and bound an AF_ALG socket")
sys.exit(3)
