#!/usr/bin/env python3
# Resource: grow one file in the workspace 1 MiB at a time past the file-size
# limit (RLIMIT_FSIZE).
# With argv[1] == "ignore", SIGXFSZ is ignored, so the write fails with EFBIG
# and the program prints "EFBIG after N MiB". Without it, the default action
# of SIGXFSZ kills the program (verdict killed, signal SIGXFSZ).
import errno, os, signal, sys

# CPython ignores SIGXFSZ at startup; restore the kernel's default action
# unless asked to ignore it.
if sys.argv[1:] == ["ignore"]:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
else:
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
MIB = 1 << 20
chunk = os.urandom(MIB)
written = 0
try:
    with open("big", "wb", buffering=0) as f:
        while written < 1024:
            f.write(chunk)
            written += 1
except OSError as e:
    print(f"{errno.errorcode.get(e.errno, e.errno)} after {written} MiB")
    sys.exit(0)
print(f"no error after {written} MiB")
