#!/usr/bin/env python3
# Probe: make this process immune to the OOM killer by writing -1000 to
# /proc/self/oom_score_adj (and -17 to the legacy oom_adj).
# Why it matters: cove's memory limit ends with the OOM killer; an immune
# process would push the kernel to kill something else, on the host if the
# host runs out. Lowering the value needs CAP_SYS_RESOURCE.
# The previous value is restored if a write succeeds.
# Expect: BLOCKED (EACCES).
import errno, sys

errs = set()
for path, value in [("/proc/self/oom_score_adj", b"-1000"), ("/proc/self/oom_adj", b"-17")]:
    try:
        with open(path, "rb") as f:
            before = f.read().strip()
        with open(path, "wb", buffering=0) as f:
            f.write(value)
    except OSError as e:
        errs.add(errno.errorcode.get(e.errno, str(e.errno)))
        continue
    with open(path, "wb", buffering=0) as f:
        f.write(before)
    print(f"ESCAPED: wrote {value.decode()} to {path}")
    sys.exit(3)
print(f"BLOCKED: lower the OOM score ({'/'.join(sorted(errs))})")
