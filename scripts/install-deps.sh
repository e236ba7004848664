#!/usr/bin/env bash
# Installs every Debian package peerflash needs to build, test, demo and bench.
# Idempotent: does nothing (and needs no root) when all are present.
# The lists live in scripts/deps/*.txt, one file per component, one package a line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)

mapfile -t wanted < <(cat "$here"/deps/*.txt | sed -e 's/#.*//' -e 's/[[:space:]]//g' | grep -v '^$' | sort -u)
missing=()
for pkg in "${wanted[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done
if [[ ${#missing[@]} -eq 0 ]]; then
    exit 0
fi

echo "peerflash: installing Debian packages: ${missing[*]}" >&2
if [[ $(id -u) -eq 0 ]]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
else
    echo "peerflash: these packages are missing and installing them needs root:" >&2
    echo "    apt-get install -y --no-install-recommends ${missing[*]}" >&2
    echo "Run that as root (or run 'make deps' as root), then try again." >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# --no-install-recommends matters: arduino-core-avr would otherwise pull in an IDE and Java.
if ! "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >/tmp/peerflash-apt.log 2>&1; then
    "${sudo[@]}" apt-get update -q >/tmp/peerflash-apt-update.log 2>&1 || true
    if ! "${sudo[@]}" apt-get install -y --no-install-recommends "${missing[@]}" >/tmp/peerflash-apt.log 2>&1; then
        tail -n 20 /tmp/peerflash-apt.log >&2
        echo "peerflash: apt-get install failed (full log: /tmp/peerflash-apt.log)" >&2
        exit 1
    fi
fi
echo "peerflash: packages installed." >&2
