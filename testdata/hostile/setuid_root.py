#!/usr/bin/env python3
# Probe: become root: setuid(0), setgid(0), setgroups([0]).
# Why it matters: user code runs as uid 1000 with no capabilities; none of
# these may succeed, and the process must not already be uid or gid 0.
# (Setuid binaries are moot: no_new_privs is set; status_check.py checks it.)
# Expect: BLOCKED (EPERM).
import errno, os, sys

if os.geteuid() == 0 or os.getuid() == 0:
    print("ESCAPED: already running as uid 0")
    sys.exit(3)
if os.getegid() == 0 or 0 in os.getgroups():
    print("ESCAPED: already running with gid 0")
    sys.exit(3)

errs = []
for label, call in [("setuid", lambda: os.setuid(0)), ("setgid", lambda: os.setgid(0)),
                    ("setgroups", lambda: os.setgroups([0]))]:
    try:
        call()
    except OSError as e:
        errs.append(f"{label}: {errno.errorcode.get(e.errno, e.errno)}")
    else:
        print(f"ESCAPED: {label}(0) succeeded")
        sys.exit(3)
print(f"BLOCKED: become root ({', '.join(errs)})")
