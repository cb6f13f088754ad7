#!/usr/bin/env python3
# Probe: open kernel tunables under /proc/sys for writing.
# Why it matters: /proc/sys/kernel/core_pattern and /proc/sys/kernel/modprobe
# name programs the kernel runs as real root on the host; writing them is a
# full escape. The sandbox mounts /proc/sys read-only, and the files belong
# to root.
# The kernel checks both permission and the read-only mount at open, so the
# probe stops there for the global files. For kernel/hostname (per UTS
# namespace) it also writes the current value back, which changes nothing.
# COVE_HOSTILE_DRYRUN=1 skips that write.
# Expect: BLOCKED (EROFS or EACCES).
import errno, os, sys

TARGETS = ["/proc/sys/kernel/hostname", "/proc/sys/kernel/core_pattern",
           "/proc/sys/kernel/modprobe", "/proc/sys/vm/panic_on_oom"]
dry = os.environ.get("COVE_HOSTILE_DRYRUN") == "1"

errs = set()
for path in TARGETS:
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError as e:
        errs.add(errno.errorcode.get(e.errno, str(e.errno)))
        continue
    try:
        if path.endswith("/hostname") and not dry:
            with open(path, "rb") as f:
                os.write(fd, f.read())
    except OSError as e:
        errs.add(errno.errorcode.get(e.errno, str(e.errno)))
        continue
    finally:
        os.close(fd)
    print(f"ESCAPED: opened {path} for writing")
    sys.exit(3)
print(f"BLOCKED: write to /proc/sys ({'/'.join(sorted(errs))})")
