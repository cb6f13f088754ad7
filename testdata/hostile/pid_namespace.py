#!/usr/bin/env python3
# Probe: look at the processes visible in /proc.
# Why it matters: in its own pid namespace the sandbox sees only cove's agent
# (PID 1) and its own processes: no kernel threads and nobody else's
# programs, whose command lines and environments would otherwise be there
# to read and signal.
# Expect: BLOCKED (no kernel threads; at most a few unrelated processes).
import os, sys

MAX_UNRELATED = 8
PF_KTHREAD = 0x00200000


def stat_of(pid):
    """(ppid, flags) from /proc/<pid>/stat, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # After the command name: state, ppid, pgrp, session, tty_nr, tpgid, flags.
    return int(fields[1]), int(fields[6])


procs = {int(p): stat_of(p) for p in os.listdir("/proc") if p.isdigit()}
procs = {p: s for p, s in procs.items() if s is not None}
parents = {p: s[0] for p, s in procs.items()}


def chain(pid):
    """pid and its ancestors."""
    seen = []
    while pid and pid not in seen:
        seen.append(pid)
        pid = parents.get(pid)
    return seen


me = os.getpid()
mine = set(chain(me))
kernel = [p for p, (_, flags) in procs.items() if flags & PF_KTHREAD]
unrelated = [p for p in procs if p not in mine and me not in chain(p)]
if kernel:
    print(f"ESCAPED: {len(kernel)} kernel threads are visible")
    sys.exit(3)
if len(unrelated) > MAX_UNRELATED:
    print(f"ESCAPED: {len(unrelated)} unrelated processes are visible")
    sys.exit(3)
print(f"BLOCKED: pid namespace ({len(procs)} processes visible, no kernel threads)")
