#!/usr/bin/env python3
# Probe: push a character into a terminal's input with the TIOCSTI ioctl.
# Why it matters: if the sandbox shares a terminal with the host (a CLI
# passing its tty through), TIOCSTI types commands into the host's shell
# after the program exits. Without a terminal there is nothing to attack.
# The character pushed is a single space.
# Expect: BLOCKED (no terminal, or EPERM/EIO).
import errno, fcntl, os, sys, termios

fds, errs = [], set()
try:
    fds.append(os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY))
except OSError as e:
    errs.add(f"/dev/tty: {errno.errorcode.get(e.errno, e.errno)}")
fds += [fd for fd in (0, 1, 2) if os.isatty(fd)]
if not fds:
    print(f"BLOCKED: TIOCSTI (no terminal; {', '.join(sorted(errs))})")
    sys.exit(0)
for fd in fds:
    try:
        fcntl.ioctl(fd, termios.TIOCSTI, b" ")
    except OSError as e:
        errs.add(errno.errorcode.get(e.errno, str(e.errno)))
    else:
        print("ESCAPED: TIOCSTI pushed input into a terminal")
        sys.exit(3)
print(f"BLOCKED: TIOCSTI ({', '.join(sorted(errs))})")
