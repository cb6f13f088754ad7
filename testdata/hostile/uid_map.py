#!/usr/bin/env python3
# Probe: check the user namespace's id maps and this process's ids.
# Why it matters: if the sandbox's ids map onto uid or gid 0 of the parent
# user namespace (the host, for cove; the map is also the identity map when
# there is no user namespace at all), then a file or process the sandbox
# owns is owned by root outside it. Code must run as uid 1000, gid 1000,
# with no supplementary group 0.
# Expect: BLOCKED (no map reaches outside id 0; uid and gid are 1000).
import os, sys

bad = []
for kind in ("uid", "gid"):
    with open(f"/proc/self/{kind}_map") as f:
        for line in f:
            inside, outside, count = (int(x) for x in line.split())
            if outside == 0:  # outside ids are >= 0, so only a range starting at 0 covers 0
                bad.append(f"{kind}_map maps {inside} to outside {kind} 0 (count {count})")
if os.getuid() != 1000 or os.geteuid() != 1000:
    bad.append(f"uid is {os.getuid()}/{os.geteuid()}, not 1000")
if os.getgid() != 1000 or os.getegid() != 1000:
    bad.append(f"gid is {os.getgid()}/{os.getegid()}, not 1000")
if 0 in os.getgroups():
    bad.append("supplementary group 0")
if bad:
    print(f"ESCAPED: {'; '.join(bad)}")
    sys.exit(3)
print("BLOCKED: id maps (no map reaches outside id 0; running as 1000:1000)")
