#!/usr/bin/env python3
# Probe: read this process's security state from /proc/self/status.
# Why it matters: every capability set must be empty, no_new_privs must be
# set (so setuid binaries and file capabilities cannot raise privileges),
# and a seccomp filter must be in force (mode 2).
# Expect: BLOCKED (all of CapInh/CapPrm/CapEff/CapBnd/CapAmb are 0,
# NoNewPrivs is 1, Seccomp is 2).
import sys

WANT = {"CapInh": 0, "CapPrm": 0, "CapEff": 0, "CapBnd": 0, "CapAmb": 0,
        "NoNewPrivs": 1, "Seccomp": 2}

status = {}
with open("/proc/self/status") as f:
    for line in f:
        key, _, value = line.partition(":")
        status[key] = value.strip()

bad = []
for key, want in WANT.items():
    if key not in status:
        bad.append(f"{key} missing")
        continue
    base = 16 if key.startswith("Cap") else 10
    if int(status[key], base) != want:
        bad.append(f"{key}={status[key]}")
if bad:
    print(f"ESCAPED: insecure process status: {', '.join(bad)}")
    sys.exit(3)
print("BLOCKED: privileges (no capabilities, NoNewPrivs 1, Seccomp 2)")
