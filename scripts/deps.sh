#!/usr/bin/env bash
# Installs what cove and its tests need on a Debian machine, skipping what
# is already there. Safe to run again.
set -euo pipefail

need=()
command -v mkfs.btrfs >/dev/null 2>&1 || [[ -x /usr/sbin/mkfs.btrfs ]] || need+=(btrfs-progs)
command -v python3 >/dev/null 2>&1 || [[ -x /usr/bin/python3 ]] || need+=(python3)
[[ -x /usr/bin/node ]] || command -v node >/dev/null 2>&1 || need+=(nodejs)
# npm fetches the packages of the MCP client test and the web UI's build.
command -v npm >/dev/null 2>&1 || need+=(npm)
# Charts and tables in stateful Python contexts, tested for real.
for mod in matplotlib:python3-matplotlib numpy:python3-numpy pandas:python3-pandas; do
  /usr/bin/python3 -c "import ${mod%%:*}" >/dev/null 2>&1 || need+=("${mod#*:}")
done
# pip, whose refusal to install into the system's Python the hint tests
# read.
/usr/bin/python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
# venv, which cove's hints for pip name (Debian keeps ensurepip apart).
/usr/bin/python3 -c 'import ensurepip' >/dev/null 2>&1 || need+=(python3-venv)
# The race detector, which the tests run under too, needs cgo.
command -v gcc >/dev/null 2>&1 || need+=(gcc libc6-dev)
# The web UI's browser tests drive Debian's headless chromium.
command -v chromium >/dev/null 2>&1 || need+=(chromium)

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
