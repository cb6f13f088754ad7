#!/usr/bin/env python3
# Probe: open cgroup control files for writing: the root cgroup's
# cgroup.procs (moving there escapes every limit), release_agent (a program
# the kernel runs as host root, CVE-2022-0492), and the limit files of this
# process's own cgroup (raising its own memory or pids limit).
# Files are only opened, never written: the kernel checks permission and the
# read-only mount at open, so this is harmless on a bare host.
# Expect: BLOCKED (ENOENT, EROFS or EACCES).
import errno, glob, os, sys

paths = ["/sys/fs/cgroup/cgroup.procs", "/sys/fs/cgroup/release_agent"]
paths += sorted(glob.glob("/sys/fs/cgroup/*/cgroup.procs"))
paths += sorted(glob.glob("/sys/fs/cgroup/*/release_agent"))
# Own cgroup, from /proc/self/cgroup ("id:controllers:/path").
try:
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, ctrls, rel = line.rstrip("\n").split(":", 2)
            for ctrl in ctrls.split(",") if ctrls else [""]:
                base = os.path.join("/sys/fs/cgroup", ctrl, rel.lstrip("/"))
                for limit in ["memory.max", "memory.limit_in_bytes", "memory.memsw.limit_in_bytes",
                              "pids.max", "cpu.max", "cpu.cfs_quota_us", "cgroup.procs"]:
                    paths.append(os.path.join(base, limit))
except OSError:
    pass

errs = set()
for path in dict.fromkeys(paths):  # unique, in order
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError as e:
        errs.add(errno.errorcode.get(e.errno, str(e.errno)))
        continue
    os.close(fd)
    print(f"ESCAPED: opened {path} for writing")
    sys.exit(3)
print(f"BLOCKED: cgroup control files ({'/'.join(sorted(errs))})")
