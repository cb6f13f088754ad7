#!/usr/bin/env bash
# Installs what cove and its tests need on a Debian machine, skipping what
# is already there. Safe to run again.
set -euo pipefail

need=()
command -v mkfs.btrfs >/dev/null 2>&1 || [[ -x /usr/sbin/mkfs.btrfs ]] || need+=(btrfs-progs)
command -v python3 >/dev/null 2>&1 || [[ -x /usr/bin/python3 ]] || need+=(python3)
[[ -x /usr/bin/node ]] || command -v node >/dev/null 2>&1 || need+=(nodejs)

if ((${#need[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "cove needs these Debian packages: ${need[*]} (run as root, or: sudo apt-get install ${need[*]})" >&2
    exit 1
  fi
  echo "installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if ! command -v go >/dev/null 2>&1; then
  if [[ -x /usr/local/go/bin/go ]]; then
    echo "go is at /usr/local/go/bin; add it to PATH" >&2
  else
    echo "cove needs Go 1.26 or later (https://go.dev/dl/)" >&2
    exit 1
  fi
fi
