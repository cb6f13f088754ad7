#!/usr/bin/env python3
# Probe: chroot into a fresh directory.
# Why it matters: chroot needs CAP_SYS_CHROOT; with it, the classic
# "chroot, then chdir ../../.." trick walks out of a chroot-based jail, and
# chroot plus a setuid binary has been a privilege escalation.
# The call runs in a child so the probe itself keeps its root.
# Expect: BLOCKED (EPERM).
import errno, os, sys, tempfile

target = tempfile.mkdtemp(prefix="cove-chroot-", dir="/tmp")
pid = os.fork()
if pid == 0:
    try:
        os.chroot(target)
    except OSError as e:
        os._exit(min(e.errno, 255) or 255)
    os._exit(0)
_, status = os.waitpid(pid, 0)
os.rmdir(target)
code = os.waitstatus_to_exitcode(status)
if code == 0:
    print("ESCAPED: chroot succeeded")
    sys.exit(3)
print(f"BLOCKED: chroot ({errno.errorcode.get(code, code)})")
