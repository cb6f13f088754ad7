#!/bin/bash
# Probe: look for the host's files: home directories, cove's state, the
# source tree, password hashes, logs, boot images, mounted volumes.
# Why it matters: the sandbox's root holds only what programs need; any of
# these with content means host data is visible. Extra paths (the runner
# passes cove's data directory on the host) come as arguments.
# Expect: BLOCKED (each absent or empty).

paths=(/root /home /var/lib/cove /work /etc/shadow /etc/ssh /var/log /boot /mnt /srv
       /run/containerd /var/run/docker.sock /run/systemd)
for a in "$@"; do
  [[ $a == *'{{'* ]] || paths+=("$a")
done

for p in "${paths[@]}"; do
  if [[ -d $p && ! -L $p ]]; then
    if [[ -n $(ls -A "$p" 2>/dev/null) ]]; then
      echo "ESCAPED: $p is visible and not empty"
      exit 3
    fi
  elif [[ -S $p ]]; then
    echo "ESCAPED: socket $p is visible"
    exit 3
  elif [[ -e $p ]] && head -c1 "$p" >/dev/null 2>&1; then
    echo "ESCAPED: $p is readable"
    exit 3
  fi
done
echo "BLOCKED: host files (${#paths[@]} paths absent, empty or unreadable)"
