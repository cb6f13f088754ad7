#!/bin/bash
# Resource: leave a process running in the background, still holding
# stdout and stderr, and exit 0.
# The execution must end when this script exits (verdict ok, not a wait for
# the background process to close its output), and the background sleep
# must be killed with it.
sleep 1000 &
echo "started background sleep"
exit 0
