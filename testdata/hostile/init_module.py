#!/usr/bin/env python3
# Probe: load a kernel module with init_module and finit_module.
# Why it matters: a loaded module is arbitrary code in the host kernel.
# The probe passes an empty image (and a bad descriptor), so nothing can
# ever load: the kernel checks CAP_SYS_MODULE first and only then looks at
# the image. EPERM means refused; ENOEXEC or EBADF mean the privilege check
# passed, which is an escape even though no module was loaded.
# Expect: BLOCKED (EPERM, or ENOSYS where the kernel has no module support).
import ctypes, errno, sys

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
SYS_init_module, SYS_finit_module = 175, 313
REFUSED = {errno.EPERM, errno.EACCES, errno.ENOSYS}


def name(e):
    return errno.errorcode.get(e, str(e))


image = ctypes.create_string_buffer(16)
r = libc.syscall(ctypes.c_long(SYS_init_module), image, ctypes.c_long(0), b"")
init_err = ctypes.get_errno()
if r == 0 or init_err not in REFUSED:
    print(f"ESCAPED: init_module passed the privilege check ({name(init_err)} on an empty image)")
    sys.exit(3)
r = libc.syscall(ctypes.c_long(SYS_finit_module), ctypes.c_long(-1), b"", ctypes.c_long(0))
finit_err = ctypes.get_errno()
if r == 0 or finit_err not in REFUSED:
    print(f"ESCAPED: finit_module passed the privilege check ({name(finit_err)} on a bad descriptor)")
    sys.exit(3)
print(f"BLOCKED: load a kernel module (init_module: {name(init_err)}, finit_module: {name(finit_err)})")
