#!/usr/bin/env python3
# Probe: unshare every other namespace type (net, pid, ipc, uts, cgroup, time).
# Why it matters: each one needs CAP_SYS_ADMIN; a new network namespace in
# particular exposes netfilter and other code that has had privilege bugs.
# Expect: BLOCKED (EPERM) for all of them.
import ctypes, errno, sys

libc = ctypes.CDLL(None, use_errno=True)
FLAGS = {
    "CLONE_NEWNET": 0x40000000,
    "CLONE_NEWPID": 0x20000000,
    "CLONE_NEWIPC": 0x08000000,
    "CLONE_NEWUTS": 0x04000000,
    "CLONE_NEWCGROUP": 0x02000000,
    "CLONE_NEWTIME": 0x00000080,
}

won, errs = [], set()
for flag_name, flag in FLAGS.items():
    if libc.unshare(flag) == 0:
        won.append(flag_name)
    else:
        err = ctypes.get_errno()
        errs.add(errno.errorcode.get(err, str(err)))
if won:
    print(f"ESCAPED: unshare succeeded for {', '.join(won)}")
    sys.exit(3)
print(f"BLOCKED: unshare of net, pid, ipc, uts, cgroup and time namespaces ({'/'.join(sorted(errs))})")
