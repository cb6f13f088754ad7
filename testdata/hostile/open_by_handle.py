#!/usr/bin/env python3
# Probe: open a file by its file handle with open_by_handle_at (the
# "Shocker" escape from early Docker).
# Why it matters: a file handle names an inode on a whole filesystem, not a
# path, so a handle opened against the /usr bind mount can reach any file of
# the host filesystem behind it. It needs CAP_DAC_READ_SEARCH, which the
# filter and the dropped capabilities both deny.
# The probe takes the handle of the Python binary (or, if the kernel will
# not hand one out, crafts one for inode 2, the filesystem root, as Shocker
# did). EPERM means refused; any other error means the privilege check
# passed (the kernel checks it before decoding the handle).
# Expect: BLOCKED (EPERM).
import ctypes, errno, os, struct, sys

libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
SYS_name_to_handle_at, SYS_open_by_handle_at = 303, 304
AT_FDCWD, AT_SYMLINK_FOLLOW = -100, 0x400
MAX_HANDLE_SZ = 128
REFUSED = {errno.EPERM, errno.EACCES, errno.ENOSYS}


def name(e):
    return errno.errorcode.get(e, str(e))


target = os.path.realpath(sys.executable)
handle = ctypes.create_string_buffer(struct.pack("Ii", MAX_HANDLE_SZ, 0), 8 + MAX_HANDLE_SZ)
mount_id = ctypes.c_int()
r = libc.syscall(ctypes.c_long(SYS_name_to_handle_at), ctypes.c_long(AT_FDCWD), target.encode(),
                 handle, ctypes.byref(mount_id), ctypes.c_long(AT_SYMLINK_FOLLOW))
how = "the Python binary's handle"
if r != 0:
    # struct file_handle { handle_bytes = 8; handle_type = 1 (FILEID_INO32_GEN);
    # inode 2, generation 0 }
    handle = ctypes.create_string_buffer(struct.pack("IiII", 8, 1, 2, 0), 8 + MAX_HANDLE_SZ)
    how = f"a crafted handle (name_to_handle_at: {name(ctypes.get_errno())})"

mount_fd = os.open(os.path.dirname(target), os.O_RDONLY | os.O_DIRECTORY)
fd = libc.syscall(ctypes.c_long(SYS_open_by_handle_at), ctypes.c_long(mount_fd), handle,
                  ctypes.c_long(os.O_RDONLY))
err = ctypes.get_errno()
os.close(mount_fd)
if fd >= 0:
    os.close(fd)
    print("ESCAPED: open_by_handle_at opened a file by handle")
    sys.exit(3)
if err not in REFUSED:
    print(f"ESCAPED: open_by_handle_at passed the CAP_DAC_READ_SEARCH check ({name(err)})")
    sys.exit(3)
print(f"BLOCKED: open_by_handle_at with {how} ({name(err)})")
