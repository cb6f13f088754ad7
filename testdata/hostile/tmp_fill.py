#!/usr/bin/env python3
# Resource: fill a memory-backed directory (argv[1]: /tmp or /dev/shm) in
# 1 MiB writes until one fails, then print the errno and the MiB written.
# Each of /tmp and /dev/shm is a size-limited tmpfs: ENOSPC must come at
# about the tmp limit.
import errno, os, sys

d = sys.argv[1] if len(sys.argv) > 1 else "/tmp"
MIB = 1 << 20
chunk = b"\xa5" * MIB
written = 0
try:
    with open(os.path.join(d, "cove-fill"), "wb") as f:
        while written < 4096:
            f.write(chunk)
            f.flush()
            written += 1
except OSError as e:
    print(f"{errno.errorcode.get(e.errno, e.errno)} after {written} MiB")
    sys.exit(0)
print(f"no error after {written} MiB")
