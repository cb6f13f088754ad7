#!/usr/bin/env python3
# Resource: write to stdout forever. The output limit must stop it (verdict
# output_limit) and the captured stdout must be truncated near the limit.
import sys

line = "x" * 1023 + "\n"
while True:
    sys.stdout.write(line)
