#!/usr/bin/env python3
# Probe: kill(1, SIGKILL), aimed at cove's agent.
# Why it matters: the agent is the sandbox's only door; user code must not
# be allowed to signal it at all. (The kernel also ignores SIGKILL sent to a
# namespace's init from inside, but the permission check comes first, and
# that is what this probe observes: EPERM, or success.)
# Expect: BLOCKED (EPERM).
# COVE_HOSTILE_DRYRUN=1 sends signal 0 instead, which runs the same
# permission check and delivers nothing, so a bare host's init survives.
import errno, os, signal, sys

dry = os.environ.get("COVE_HOSTILE_DRYRUN") == "1"
sig = 0 if dry else signal.SIGKILL
label = "kill(1, 0)" if dry else "kill(1, SIGKILL)"
try:
    os.kill(1, sig)
except OSError as e:
    print(f"BLOCKED: {label} ({errno.errorcode.get(e.errno, e.errno)})")
    sys.exit(0)
print(f"ESCAPED: {label} was permitted")
sys.exit(3)
