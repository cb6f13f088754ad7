#!/usr/bin/env python3
# Probe: read /proc/1/environ, the environment of cove's agent.
# Why it matters: the agent's environment may hold configuration of the
# host; reading it needs ptrace access to PID 1, which is non-dumpable and
# runs as another uid. (The content is never printed.)
# Expect: BLOCKED (EACCES).
import errno, sys

try:
    with open("/proc/1/environ", "rb") as f:
        data = f.read()
except OSError as e:
    print(f"BLOCKED: read /proc/1/environ ({errno.errorcode.get(e.errno, e.errno)})")
    sys.exit(0)
print(f"ESCAPED: read /proc/1/environ ({len(data)} bytes)")
sys.exit(3)
