#!/usr/bin/env python3
# Probe: unmount the masks over /proc and the sandbox's root with umount2.
# Why it matters: /proc/kcore and friends are hidden by bind mounts of
# /dev/null and /proc/sys by a read-only bind; unmounting them uncovers the
# real files, and detaching / can reveal whatever lies beneath the root.
# Expect: BLOCKED (EPERM).
# COVE_HOSTILE_DRYRUN=1 first moves into a private mount namespace, so on a
# bare host the same calls run without touching the host's mounts.
import ctypes, errno, os, sys

libc = ctypes.CDLL(None, use_errno=True)
libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
MNT_DETACH = 2
CLONE_NEWNS = 0x00020000
MS_REC, MS_PRIVATE = 0x4000, 0x40000


def name(e):
    return errno.errorcode.get(e, str(e))


if os.environ.get("COVE_HOSTILE_DRYRUN") == "1":
    if libc.unshare(CLONE_NEWNS) != 0 or libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        print(f"DRYRUN: would umount2 /proc/kcore, /proc/sys and / ({name(ctypes.get_errno())} making a private mount namespace)")
        sys.exit(0)

refusals = []
for target in ["/proc/kcore", "/proc/timer_list", "/proc/sys", "/"]:
    if libc.umount2(target.encode(), MNT_DETACH) == 0:
        print(f"ESCAPED: unmounted {target}")
        sys.exit(3)
    err = ctypes.get_errno()
    if err == errno.ENOENT:
        continue
    if err == errno.EINVAL:
        # The kernel checks the privilege first and only then whether the
        # target is an unlockable mount point, so EINVAL means we had it.
        print(f"ESCAPED: umount2 {target} passed the privilege check (EINVAL)")
        sys.exit(3)
    refusals.append(f"{target}: {name(err)}")
print(f"BLOCKED: umount2 ({'; '.join(refusals)})")
