#!/usr/bin/env python3
# Resource: create 50 children that exit at once and are never waited for,
# count them as zombies, then exit 0 leaving them to be reparented.
# PID 1 (the agent) must reap them; none may be left behind.
import os, sys, time

children = []
for _ in range(50):
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    children.append(pid)
time.sleep(0.5)
zombies = 0
for pid in children:
    try:
        with open(f"/proc/{pid}/stat") as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                zombies += 1
    except OSError:
        pass
print(f"zombies: {zombies}")
sys.exit(0)
