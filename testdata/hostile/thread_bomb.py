#!/usr/bin/env python3
# Resource: start sleeping threads until the kernel refuses one, then print
# how many started and exit 0. Threads count against the pids limit, so the
# count must stay below it.
import os, threading, time

threading.stack_size(256 << 10)
count = 0
while count < 100000:
    try:
        threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()
    except RuntimeError:  # "can't start new thread"
        break
    count += 1
print(f"threads: {count}", flush=True)
os._exit(0)  # do not wait for the sleeping threads
