#!/usr/bin/env python3
# Probe: list this process's open file descriptors.
# Why it matters: a descriptor inherited from the host (a directory, a
# socket to a daemon, the agent's own channel) is a handle on something
# outside the sandbox; openat and fchdir on a host directory walk right out.
# Only stdin, stdout and stderr may be open when user code starts.
# Expect: BLOCKED (nothing beyond 0, 1 and 2).
import os, sys


def is_open(fd):
    try:
        os.fstat(fd)
        return True
    except OSError:
        return False


# The listing includes the descriptor used to read the directory, which is
# closed again by the time listdir returns; is_open weeds it out.
extra = [fd for fd in sorted(int(n) for n in os.listdir("/proc/self/fd")) if fd > 2 and is_open(fd)]
if extra:
    described = []
    for fd in extra:
        try:
            described.append(f"{fd} ({os.readlink(f'/proc/self/fd/{fd}')})")
        except OSError:
            described.append(str(fd))
    print(f"ESCAPED: inherited descriptors beyond stdio: {', '.join(described)}")
    sys.exit(3)
print("BLOCKED: inherited descriptors (only stdin, stdout and stderr are open)")
