#!/usr/bin/env python3
# Resource: ignore SIGTERM, SIGINT and SIGHUP and sleep in a loop. A timeout
# that only sends SIGTERM never ends it; cove must follow up with SIGKILL.
import signal, sys, time

for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(sig, signal.SIG_IGN)
print("ignoring SIGTERM", flush=True)
while True:
    time.sleep(0.1)
