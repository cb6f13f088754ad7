#!/bin/bash
# Probe: create files in /, /usr, /etc, /bin and /var, and open /etc/passwd
# for appending.
# Why it matters: the sandbox's root is read-only and /usr is the host's own
# /usr bound read-only; a writable root would let code plant binaries that
# other executions (or, through a shared /usr, the host) run.
# Files created on a bare host are removed at once; /etc/passwd is opened
# for appending but nothing is written to it.
# Expect: BLOCKED (Read-only file system or Permission denied).

reasons=()
note() { # keep the text after the last ": " of an error message
  local msg=${1##*: }
  [[ " ${reasons[*]} " == *" ${msg} "* ]] || reasons+=("$msg")
}

for dir in / /usr /usr/bin /etc /bin /var; do
  f="${dir%/}/.cove-probe-$$"
  if err=$( { : > "$f"; } 2>&1 ); then
    rm -f "$f"
    echo "ESCAPED: created a file in $dir"
    exit 3
  fi
  note "$err"
done

if err=$( { : >> /etc/passwd; } 2>&1 ); then
  echo "ESCAPED: opened /etc/passwd for appending"
  exit 3
fi
note "$err"

IFS=/; echo "BLOCKED: write to the root filesystem (${reasons[*]})"
