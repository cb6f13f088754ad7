#!/usr/bin/env python3
# Resource: memory in UDP receive queues.
# Why it matters: datagrams sent to a loopback UDP socket that nobody
# reads wait in its receive queue, up to several MiB per socket. cgroup v1
# counts them against a group only when it has a TCP limit
# (memory.kmem.tcp.limit_in_bytes, which covers UDP too); without one a
# sandbox limited to 64 MiB queued over 2 GiB, counted only in the
# host-wide net.ipv4.udp_mem.
# The program makes pairs of sockets and sends from one to the other until
# the kernel takes nothing more for several new pairs in a row or CAP_MIB
# are queued. It prints "queued N MiB"; the manifest bounds N by the
# memory limit.
import socket

CAP_MIB = 512
payload = b"x" * 60000
pairs, total, idle = [], 0, 0
try:
    while total < CAP_MIB << 20 and idle < 8:
        r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        r.bind(("127.0.0.1", 0))
        r.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 24)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setblocking(False)
        before = total
        for _ in range(400):
            s.sendto(payload, r.getsockname())
        # Loopback drops what the receiver cannot take: count what arrived.
        queued = sum(int(l.split()[4].split(":")[1], 16)
                     for l in open("/proc/net/udp").readlines()[1:])
        total = queued
        idle = idle + 1 if total - before < len(payload) else 0
        pairs.append((r, s))
except OSError as e:
    print(f"stopped: {e.strerror} after {len(pairs)} pairs", flush=True)
print(f"queued {total >> 20} MiB in {len(pairs)} pairs", flush=True)
