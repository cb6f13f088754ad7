#!/usr/bin/env python3
# Resource: open /dev/null until the kernel refuses, then print the errno
# and how many opens succeeded. RLIMIT_NOFILE must stop it with EMFILE; the
# three standard descriptors count against the limit too.
import errno, os

fds = []
while True:
    try:
        fds.append(os.open("/dev/null", os.O_RDONLY))
    except OSError as e:
        print(f"{errno.errorcode.get(e.errno, e.errno)} after {len(fds)}")
        break
    if len(fds) >= 1 << 20:
        print(f"no error after {len(fds)}")
        break
