#!/usr/bin/env python3
# Probe: raise the hard limits on open files and file size.
# Why it matters: cove sets RLIMIT_NOFILE and RLIMIT_FSIZE for user code; a
# process that can raise its hard limits (CAP_SYS_RESOURCE) sheds them, and
# a limit left at "unlimited" was never set.
# Expect: BLOCKED (both hard limits finite; raising them fails with EPERM).
import errno, resource, sys

LIMITS = [("RLIMIT_NOFILE", resource.RLIMIT_NOFILE), ("RLIMIT_FSIZE", resource.RLIMIT_FSIZE)]
errs = []
for label, which in LIMITS:
    soft, hard = resource.getrlimit(which)
    if hard == resource.RLIM_INFINITY:
        print(f"ESCAPED: {label} has no hard limit")
        sys.exit(3)
    try:
        resource.setrlimit(which, (soft, hard + 1))
    except ValueError:  # Python's way of reporting EPERM here
        errs.append(f"{label}: EPERM")
    except OSError as e:
        errs.append(f"{label}: {errno.errorcode.get(e.errno, e.errno)}")
    else:
        print(f"ESCAPED: raised the hard {label} from {hard} to {hard + 1}")
        sys.exit(3)
print(f"BLOCKED: raise hard limits ({', '.join(errs)})")
