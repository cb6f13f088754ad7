#!/usr/bin/env python3
# Probe: connect to abstract Unix sockets of the host.
# Why it matters: abstract socket names belong to the network namespace, not
# the filesystem, so a sandbox sharing the host's network namespace can reach
# host daemons that listen on them (the containerd-shim escape,
# CVE-2020-15257). The test runner listens on the host on the abstract name
# given as argv[1]; the probe also tries every abstract name it can see in
# /proc/net/unix.
# Expect: BLOCKED (ECONNREFUSED: the name does not exist in the sandbox).
import errno, socket, sys

if len(sys.argv) < 2 or "{{" in sys.argv[1]:
    sys.exit("usage: net_abstract_unix.py ABSTRACT_NAME (the runner fills it in)")

names = [sys.argv[1]]
with open("/proc/net/unix") as f:
    for line in f.readlines()[1:]:
        fields = line.split()
        if len(fields) >= 8 and fields[7].startswith("@"):
            names.append(fields[7][1:])

errs = set()
for n in names:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect("\0" + n)
    except OSError as e:
        errs.add(errno.errorcode.get(e.errno, str(e.errno)))
    else:
        print("ESCAPED: connected to the host's abstract socket" if n == names[0]
              else f"ESCAPED: connected to abstract socket @{n} listed in /proc/net/unix")
        sys.exit(3)
    finally:
        s.close()
print(f"BLOCKED: abstract Unix sockets ({', '.join(sorted(errs))})")
