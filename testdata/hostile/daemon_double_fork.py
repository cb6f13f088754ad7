#!/usr/bin/env python3
# Resource: a classic daemon: fork, setsid, fork again, close stdio, ignore
# SIGTERM and SIGHUP, sleep forever. The parent exits 0 at once.
# A new session and process group escape kill(-pgid); only killing the whole
# cgroup or pid namespace catches it. The execution ends ok and no process
# may be left behind.
import os, signal, sys, time

if os.fork() > 0:
    os.wait()  # the first child exits right after the second fork
    print("daemon started")
    sys.exit(0)
os.setsid()
if os.fork() > 0:
    os._exit(0)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
signal.signal(signal.SIGHUP, signal.SIG_IGN)
devnull = os.open("/dev/null", os.O_RDWR)
for fd in (0, 1, 2):
    os.dup2(devnull, fd)
while True:
    time.sleep(60)
