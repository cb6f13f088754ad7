#!/usr/bin/env python3
# Probe: open netlink sockets and ask the kernel for replies that are never
# read (RTM_GETLINK), and send netlink messages to a peer that never reads.
# Why it matters: netlink queues are kernel memory that the sandbox's memory
# limit does not count; hundreds of such sockets held gigabytes of the
# host's memory from a sandbox limited to 64 MiB.
# Expect: BLOCKED (EAFNOSUPPORT for every netlink protocol).
import errno, socket, sys

opened = []
for proto in (0, 2, 4):  # NETLINK_ROUTE, NETLINK_USERSOCK, NETLINK_SOCK_DIAG
    try:
        opened.append(socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, proto))
    except OSError as e:
        if e.errno not in (errno.EAFNOSUPPORT, errno.EPERM):
            print(f"ESCAPED: netlink protocol {proto} failed oddly ({errno.errorcode.get(e.errno, e.errno)})")
            sys.exit(3)
if opened:
    print(f"ESCAPED: opened {len(opened)} netlink sockets")
    sys.exit(3)
print("BLOCKED: netlink sockets (EAFNOSUPPORT)")
