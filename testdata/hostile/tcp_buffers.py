#!/usr/bin/env python3
# Resource: memory in socket buffers.
# Why it matters: bytes written to a loopback TCP connection that nobody
# reads sit in the kernel's socket buffers, several MiB per connection.
# cgroup v1 counts them apart from a group's memory and only when the
# group has a TCP limit (memory.kmem.tcp.limit_in_bytes); without one a
# sandbox limited to 64 MiB held hundreds of MiB there, counted only in
# the host-wide net.ipv4.tcp_mem, which all TCP of the host shares.
# The program opens connections to its own listener and fills each
# without reading, until the kernel takes nothing more from several new
# connections in a row or it has buffered CAP_MIB. It prints
# "buffered N MiB"; the manifest bounds N by the memory limit.
import os, socket, sys, time

CAP_MIB = 512
chunk = b"x" * 65536
ln = socket.socket()
ln.bind(("127.0.0.1", 0))
ln.listen(4096)
conns, total, idle = [], 0, 0
try:
    while total < CAP_MIB << 20 and idle < 8:
        c = socket.create_connection(ln.getsockname())
        s, _ = ln.accept()
        c.setblocking(False)
        sent = 0
        deadline = time.monotonic() + 1
        while time.monotonic() < deadline:
            try:
                sent += c.send(chunk)
            except BlockingIOError:
                # Give the receiver a moment: loopback delivers in softirq.
                time.sleep(0.01)
                try:
                    sent += c.send(chunk)
                except BlockingIOError:
                    break
        total += sent
        idle = idle + 1 if sent < len(chunk) else 0
        conns.append((c, s))
except OSError as e:
    print(f"stopped: {e.strerror} after {len(conns)} connections", flush=True)
print(f"buffered {total >> 20} MiB in {len(conns)} connections", flush=True)
