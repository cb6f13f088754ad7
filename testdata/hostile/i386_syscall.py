#!/usr/bin/env python3
# Probe: make a 32-bit (i386) system call with "int 0x80" from this 64-bit
# process: getpid, which is number 20 in the i386 table.
# Why it matters: Docker's default profile lets i386 calls through; a filter
# that only checks x86_64 numbers is bypassed through the 32-bit entry, so
# cove must refuse every non-native ABI. The call runs in a child in case
# the filter kills the process (SIGSYS), which also counts as refused.
# Expect: BLOCKED (ENOSYS/EPERM, or the child killed by SIGSYS).
import ctypes, errno, mmap, os, signal, sys

# mov eax, 20 ; int 0x80 ; ret
CODE = bytes.fromhex("b814000000" "cd80" "c3")
libc = ctypes.CDLL(None, use_errno=True)


def in_child(fn):
    """Run fn() in a forked child; return ("ret", its result as text) or
    ("signal", the name of the signal that killed the child)."""
    rd, wr = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.write(wr, str(fn()).encode())
        finally:
            os._exit(0)
    os.close(wr)
    data = os.read(rd, 256).decode()
    os.close(rd)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return "signal", signal.Signals(os.WTERMSIG(status)).name
    return "ret", data


def i386_getpid():
    # Write the code into a private page, then make it read+execute (never
    # writable and executable at once).
    page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE)
    page.write(CODE)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(page))
    if libc.mprotect(ctypes.c_void_p(addr), ctypes.c_size_t(mmap.PAGESIZE),
                     mmap.PROT_READ | mmap.PROT_EXEC) != 0:
        return f"mprotect: {errno.errorcode.get(ctypes.get_errno(), '?')}"
    return ctypes.CFUNCTYPE(ctypes.c_int)(addr)()  # the pid, or -errno


WHAT = "i386 getpid through int 0x80"
kind, value = in_child(i386_getpid)
if kind == "signal":
    print(f"BLOCKED: {WHAT} (killed by {value})")
elif not value.lstrip("-").isdigit():
    sys.exit(f"probe error: {value or 'the child failed'}")  # not a verdict either way
elif int(value) > 0:
    print(f"ESCAPED: {WHAT} returned a pid")
    sys.exit(3)
else:
    print(f"BLOCKED: {WHAT} ({errno.errorcode.get(-int(value), value)})")
