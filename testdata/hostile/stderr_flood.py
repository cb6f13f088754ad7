#!/usr/bin/env python3
# Resource: close stdout, then write to stderr forever. The output limit
# applies to stderr too, and a closed stdout must not confuse the agent.
import os

os.close(1)
line = b"e" * 1023 + b"\n"
while True:
    os.write(2, line)
