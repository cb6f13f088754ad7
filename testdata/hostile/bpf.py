#!/usr/bin/env python3
# Probe: create a BPF map and load a two-instruction BPF socket filter.
# Why it matters: the BPF verifier and JIT are a large, bug-prone kernel
# attack surface; the filter must refuse bpf(2).
# Expect: BLOCKED (EPERM).
import ctypes, errno, os, struct, sys

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
SYS_bpf = 321
BPF_MAP_CREATE, BPF_PROG_LOAD = 0, 5
BPF_MAP_TYPE_ARRAY, BPF_PROG_TYPE_SOCKET_FILTER = 2, 1


def bpf(cmd, attr):
    buf = ctypes.create_string_buffer(attr, 128)
    r = libc.syscall(ctypes.c_long(SYS_bpf), ctypes.c_long(cmd), buf, ctypes.c_long(128))
    return r, (ctypes.get_errno() if r == -1 else 0)


def name(e):
    return errno.errorcode.get(e, str(e))


# map_type, key_size, value_size, max_entries
fd, map_err = bpf(BPF_MAP_CREATE, struct.pack("4I", BPF_MAP_TYPE_ARRAY, 4, 4, 1))
if fd >= 0:
    os.close(fd)
    print("ESCAPED: bpf(BPF_MAP_CREATE) created a map")
    sys.exit(3)

insns = ctypes.create_string_buffer(bytes.fromhex("b700000000000000" "9500000000000000"))  # r0 = 0; exit
license = ctypes.create_string_buffer(b"GPL")
# prog_type, insn_cnt, insns, license
attr = struct.pack("IIQQ", BPF_PROG_TYPE_SOCKET_FILTER, 2, ctypes.addressof(insns), ctypes.addressof(license))
fd, prog_err = bpf(BPF_PROG_LOAD, attr)
if fd >= 0:
    os.close(fd)
    print("ESCAPED: bpf(BPF_PROG_LOAD) loaded a program")
    sys.exit(3)
print(f"BLOCKED: bpf (map create: {name(map_err)}, prog load: {name(prog_err)})")
