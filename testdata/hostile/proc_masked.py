#!/usr/bin/env python3
# Probe: read the /proc and /sys entries a container runtime masks
# (/proc/keys, /proc/timer_list, /proc/sched_debug, /proc/interrupts,
# /proc/acpi, /sys/firmware ...), and look for real kernel addresses in
# /proc/kallsyms.
# Why it matters: they leak the host's keyrings, timers of every process on
# the host (with their names and pids), the host's interrupts as they happen
# (a side channel on keystrokes and network traffic), hardware tables, and
# the kernel's address layout (which defeats KASLR).
# Expect: BLOCKED (each file absent, empty or unreadable; no readable file
# under the directories; kallsyms addresses zero).
import errno, os, sys

FILES = ["/proc/keys", "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
         "/proc/latency_stats", "/proc/interrupts"]
DIRS = ["/proc/acpi", "/proc/scsi", "/proc/asound", "/sys/firmware", "/sys/devices/virtual/powercap"]

for path in FILES:
    try:
        with open(path, "rb") as f:
            data = f.read(256)
    except OSError:
        continue
    if data:
        print(f"ESCAPED: {path} has content")
        sys.exit(3)


def readable_file_under(top, budget=300):
    """The first file under top (not following links) that yields data."""
    for root, dirs, files in os.walk(top):
        for name in files:
            budget -= 1
            if budget < 0:
                return None
            path = os.path.join(root, name)
            try:
                fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            except OSError:
                continue
            try:
                if os.read(fd, 1):
                    return path
            except OSError:
                pass
            finally:
                os.close(fd)
    return None


for top in DIRS:
    found = readable_file_under(top)
    if found:
        print(f"ESCAPED: {found} is readable")
        sys.exit(3)
try:
    with open("/proc/kallsyms") as f:
        addrs = [line.split()[0] for _, line in zip(range(50), f)]
except OSError as e:
    kallsyms = errno.errorcode.get(e.errno, str(e.errno))
else:
    if any(int(a, 16) != 0 for a in addrs):
        print("ESCAPED: /proc/kallsyms shows kernel addresses")
        sys.exit(3)
    kallsyms = "zeroed" if addrs else "empty"
print(f"BLOCKED: masked /proc and /sys entries (all absent, empty or unreadable; kallsyms {kallsyms})")
