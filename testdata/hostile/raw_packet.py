#!/usr/bin/env python3
# Probe: open an AF_PACKET raw socket (every Ethernet frame, ETH_P_ALL).
# Why it matters: packet sockets sniff and forge link-layer traffic and their
# kernel code has had privilege-escalation bugs. They need CAP_NET_RAW,
# which the sandboxed user does not have.
# Expect: BLOCKED (EPERM).
import errno, socket, sys

ETH_P_ALL = 0x0003
try:
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
except OSError as e:
    print(f"BLOCKED: AF_PACKET raw socket ({errno.errorcode.get(e.errno, e.errno)})")
    sys.exit(0)
s.close()
print("ESCAPED: opened an AF_PACKET raw socket")
sys.exit(3)
