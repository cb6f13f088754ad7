#!/usr/bin/env python3
# Resource: pseudo-terminals, a count shared by the whole host.
# Why it matters: every devpts instance (each sandbox's, each container's)
# takes its terminals from one pool of the kernel, kernel.pty.max less
# kernel.pty.reserve (3072 by default), and only the host's own /dev/pts
# may use the reserve. A sandbox whose devpts has no bound of its own
# could hold the whole pool through a few processes, each within its open
# files limit, and no other sandbox could then open a terminal (cove's
# terminals, script, pexpect, ssh -t).
# The program forks up to 8 holders in turn; each opens /dev/ptmx until
# the kernel refuses, tells the parent how many it holds and why it
# stopped, and keeps them until the parent ends. It prints "opened N
# terminals"; the manifest bounds N by the sandbox's own bound.
import errno
import os

held, why = 0, "no refusal"
release_r, release_w = os.pipe()
for _ in range(8):
    report_r, report_w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(report_r)
        os.close(release_w)
        fds, err = [], 0
        try:
            while True:
                fds.append(os.open("/dev/ptmx", os.O_RDWR | os.O_NOCTTY))
        except OSError as e:
            err = e.errno
        os.write(report_w, f"{len(fds)} {err}".encode())
        os.close(report_w)
        os.read(release_r, 1)  # hold the terminals until the parent ends
        os._exit(0)
    os.close(report_w)
    n, err = map(int, os.read(report_r, 64).split())
    os.close(report_r)
    held += n
    why = errno.errorcode.get(err, str(err))
    # EMFILE: this holder reached its open files limit; the next one goes
    # on. Anything else is the kernel's bound.
    if err != errno.EMFILE:
        break
print(f"opened {held} terminals, then {why}", flush=True)
os.close(release_w)
while True:
    try:
        os.wait()
    except ChildProcessError:
        break
