#!/usr/bin/env python3
# Probe: open raw IP sockets (AF_INET and AF_INET6, ICMP).
# Why it matters: raw sockets forge arbitrary IP packets (spoofing, scans,
# attacks on the loopback services of the sandbox). They need CAP_NET_RAW.
# Expect: BLOCKED (EPERM).
import errno, socket, sys

errs = []
for family, proto, label in [(socket.AF_INET, socket.IPPROTO_ICMP, "AF_INET"),
                             (socket.AF_INET6, socket.IPPROTO_ICMPV6, "AF_INET6")]:
    try:
        s = socket.socket(family, socket.SOCK_RAW, proto)
    except OSError as e:
        errs.append(f"{label}: {errno.errorcode.get(e.errno, e.errno)}")
        continue
    s.close()
    print(f"ESCAPED: opened a raw ICMP socket ({label})")
    sys.exit(3)
print(f"BLOCKED: raw IP sockets ({', '.join(errs)})")
