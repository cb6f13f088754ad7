#!/usr/bin/env python3
# Resource: write 1 MiB chunks into files in the workspace until a write
# fails, then print the errno and how much was written.
# The workspace's disk limit must stop it with EDQUOT (btrfs qgroup) or
# ENOSPC. The data is random, not zeros, so a compressing filesystem cannot
# shrink it, and it goes into 4 MiB files so the file-size limit is not what
# stops it. SIGXFSZ is ignored so that limit would show up as EFBIG.
import errno, os, signal, sys

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
MIB = 1 << 20
chunk = os.urandom(MIB)
written = 0
try:
    for n in range(1024 // 4):
        with open(f"fill-{n:03d}", "wb") as f:
            for _ in range(4):
                f.write(chunk)
                f.flush()
                written += 1
            os.fsync(f.fileno())
except OSError as e:
    print(f"{errno.errorcode.get(e.errno, e.errno)} after {written} MiB")
    sys.exit(0)
print(f"no error after {written} MiB")
