#!/usr/bin/env python3
# Probe: map huge pages (MAP_HUGETLB, memfd_create with MFD_HUGETLB).
# Why it matters: huge pages come from a pool the host reserves (for
# databases, VMs), which the sandbox's memory limit does not count; a
# sandbox could take the whole pool.
# Expect: BLOCKED (mmap fails with ENOMEM, memfd_create with EINVAL, as with
# an empty pool).
import ctypes, errno, os, sys

libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
PROT_RW, MAP_PRIVATE_ANON, MAP_HUGETLB = 0x3, 0x22, 0x40000
p = libc.mmap(None, 2 << 20, PROT_RW, MAP_PRIVATE_ANON | MAP_HUGETLB, -1, 0)
if p not in (None, ctypes.c_void_p(-1).value):
    print("ESCAPED: mapped a huge page")
    sys.exit(3)
mmap_err = ctypes.get_errno()
try:
    fd = os.memfd_create("huge", os.MFD_HUGETLB)
    print("ESCAPED: created a hugetlb memfd")
    sys.exit(3)
except OSError as e:
    memfd_err = e.errno
print(f"BLOCKED: huge pages (mmap {errno.errorcode.get(mmap_err, mmap_err)}, memfd_create {errno.errorcode.get(memfd_err, memfd_err)})")
