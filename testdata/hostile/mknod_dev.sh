#!/bin/bash
# Probe: create a character device node (c 1 3, the same device as
# /dev/null) in /tmp, /dev/shm and the workspace.
# Why it matters: whoever can make device nodes can make one for a disk or
# for kernel memory and read or write it directly. mknod of devices needs
# CAP_MKNOD in the initial user namespace.
# Expect: BLOCKED (Operation not permitted).

reasons=()
for dir in /tmp /dev/shm "$PWD"; do
  node="$dir/cove-probe-dev-$$"
  if err=$(mknod "$node" c 1 3 2>&1); then
    rm -f "$node"
    echo "ESCAPED: created a character device in $dir"
    exit 3
  fi
  msg=${err##*: }
  [[ " ${reasons[*]} " == *" ${msg} "* ]] || reasons+=("$msg")
done
IFS=/; echo "BLOCKED: mknod c 1 3 (${reasons[*]})"
