#!/usr/bin/env python3
# Probe: open TCP connections to public addresses (8.8.8.8:53, 1.1.1.1:443,
# and Google's DNS over IPv6).
# Why it matters: the sandbox's network namespace has only a loopback
# interface; any route out lets code exfiltrate data or attack other hosts.
# Expect: BLOCKED (ENETUNREACH: no route).
import errno, socket, sys

TARGETS = [(socket.AF_INET, ("8.8.8.8", 53)), (socket.AF_INET, ("1.1.1.1", 443)),
           (socket.AF_INET6, ("2001:4860:4860::8888", 53))]
errs = []
for family, addr in TARGETS:
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(3)
    try:
        s.connect(addr)
    except socket.timeout:
        errs.append(f"{addr[0]}: timed out")
    except OSError as e:
        errs.append(f"{addr[0]}: {errno.errorcode.get(e.errno, e.errno)}")
    else:
        print(f"ESCAPED: connected to {addr[0]} port {addr[1]}")
        sys.exit(3)
    finally:
        s.close()
print(f"BLOCKED: outbound TCP ({', '.join(errs)})")
