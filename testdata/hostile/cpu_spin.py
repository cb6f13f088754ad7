#!/usr/bin/env python3
# Resource: spin on the CPU forever. The wall-clock timeout must end it.
while True:
    pass
