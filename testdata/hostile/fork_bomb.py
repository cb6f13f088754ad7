#!/usr/bin/env python3
# Resource: every process forks forever, retrying after a short pause when
# the kernel refuses (EAGAIN at the pids limit). Nothing ever exits, so the
# timeout must end it, kill every process and leave the host unharmed.
import os, time

while True:
    try:
        os.fork()
    except OSError:
        time.sleep(0.01)
