#!/bin/bash
# Resource: the classic shell fork bomb. Each call starts two more in the
# background and returns at once, so the script itself ends immediately
# while the bomb keeps growing. The pids limit must cap it, and the
# execution's end (or its timeout) must kill every process of it.
:(){ :|:& };:
