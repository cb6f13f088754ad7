#!/usr/bin/env python3
# Probe: open the host's dangerous devices (/dev/mem, disks, /dev/kmsg,
# /dev/kvm, loop and fuse control, tun ...) and any other block or
# character device found in /dev beyond the minimal set.
# Why it matters: a disk device is every file of the host, /dev/mem is
# physical memory, loop and fuse control create mounts. The sandbox's /dev
# holds only null, zero, full, random, urandom, tty, ptmx, pts and shm.
# Devices are opened read-only and non-blocking, and closed at once.
# Expect: BLOCKED (all absent or refused).
import errno, os, stat, sys

NAMED = ["/dev/mem", "/dev/kmem", "/dev/port", "/dev/kmsg", "/dev/sda", "/dev/vda", "/dev/xvda",
         "/dev/nvme0n1", "/dev/loop-control", "/dev/loop0", "/dev/btrfs-control", "/dev/fuse",
         "/dev/kvm", "/dev/net/tun", "/dev/vsock", "/dev/vhost-vsock", "/dev/userfaultfd",
         "/dev/console", "/dev/tty0", "/dev/ttyS0", "/dev/hwrng", "/dev/cpu/0/msr"]
ALLOWED = {"null", "zero", "full", "random", "urandom", "tty", "ptmx"}

candidates = list(NAMED)
try:
    for entry in os.scandir("/dev"):
        if entry.name in ALLOWED or entry.is_symlink():
            continue
        mode = entry.stat(follow_symlinks=False).st_mode
        if stat.S_ISBLK(mode) or stat.S_ISCHR(mode):
            candidates.append(entry.path)
except OSError:
    pass

errs = set()
for path in dict.fromkeys(candidates):
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as e:
        errs.add(errno.errorcode.get(e.errno, str(e.errno)))
        continue
    os.close(fd)
    print(f"ESCAPED: opened {path}")
    sys.exit(3)
print(f"BLOCKED: host devices ({'/'.join(sorted(errs))})")
