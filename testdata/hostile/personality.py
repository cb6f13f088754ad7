#!/usr/bin/env python3
# Probe: set the READ_IMPLIES_EXEC personality flag.
# Why it matters: it makes every readable mapping executable, turning off
# W^X protections; personality(2) also toggles ADDR_NO_RANDOMIZE. Docker's
# filter allows only a handful of harmless personality values.
# Expect: BLOCKED (EPERM).
import ctypes, errno, sys

libc = ctypes.CDLL(None, use_errno=True)
libc.personality.argtypes = [ctypes.c_ulong]
READ_IMPLIES_EXEC = 0x0400000
QUERY = 0xFFFFFFFF

before = libc.personality(QUERY)
r = libc.personality(READ_IMPLIES_EXEC)
err = ctypes.get_errno()
if r != -1:
    now = libc.personality(QUERY)
    libc.personality(before if before != -1 else 0)
    if now != -1 and now & READ_IMPLIES_EXEC:
        print("ESCAPED: set the READ_IMPLIES_EXEC personality")
        sys.exit(3)
    print("BLOCKED: personality(READ_IMPLIES_EXEC) (accepted but not in effect)")
    sys.exit(0)
print(f"BLOCKED: personality(READ_IMPLIES_EXEC) ({errno.errorcode.get(err, err)})")
